"""Every figure of the reports against numbers worked out by hand on the fixed data set
(tests/webapp/reports/dataset.py), on both databases, read from raw rows and again after the
roll-up (which must agree), in Berlin across the end of summer time and in a zone half an
hour off UTC."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from tests.webapp.reports import dataset
from webapp.config import DEV_ENCRYPTION_KEY
from webapp.extensions import db
from webapp.models import Attempt, Campaign, ReportHour, ReportOperatorHour, ReportRollup
from webapp.services import figures, rollup
from webapp.services.dialing import DialingStore
from webapp.services.secrets import SecretBox

BERLIN = ZoneInfo("Europe/Berlin")
WEEKEND = figures.Period(date(2026, 10, 24), date(2026, 10, 25), BERLIN)
SATURDAY = figures.Period(date(2026, 10, 24), date(2026, 10, 24), BERLIN)
SUNDAY = figures.Period(date(2026, 10, 25), date(2026, 10, 25), BERLIN)
#: Rolls up to 25 Oct 12:00 UTC: A9 (in progress since 12:00) holds the rest back.
PARTLY = datetime(2026, 10, 26, 0, 0, tzinfo=UTC)
#: A9 is more than a day old: taken as lost, everything is rolled up (to 26 Oct 23:00).
FULLY = datetime(2026, 10, 27, 0, 0, tzinfo=UTC)


@pytest.fixture
def data(app, tenant_a, tenant_b):
    built = dataset.build(app, tenant_a.id)
    dataset.build(app, tenant_b.id, suffix=" B")  # the same again in another tenant
    return built


@pytest.fixture(params=["raw", "partly rolled up", "fully rolled up"])
def rolled(request, app, data):
    with app.app_context():
        if request.param == "partly rolled up":
            assert rollup.roll_up_all(now=PARTLY) > 0
            assert figures.rolled_until(data.tenant_id) == dataset.at(25, 12)
        elif request.param == "fully rolled up":
            rollup.roll_up_all(now=FULLY)
            assert figures.rolled_until(data.tenant_id) == dataset.at(26, 23)
    return request.param


def test_the_summary_of_the_weekend(app, data, rolled):
    with app.app_context():
        s = figures.summary(data.tenant_id, WEEKEND.start, WEEKEND.end)
    assert (s.attempts, s.picked_up, s.transferred) == (9, 6, 3)  # A9 is still in progress
    assert (s.no_answer, s.busy, s.unavailable) == (1, 1, 1)
    assert (s.technical_error, s.no_free_operator) == (2, 1)  # A6, A8; A3 apart
    # The outcome `answered` (picked up and handed over: the transferred) is not the count
    # picked up: A3, A6 and A8 were picked up too. Every attempt has one outcome.
    outcomes = (s.transferred, s.no_answer, s.busy, s.unavailable, s.technical_error)
    assert sum(outcomes) + s.no_free_operator == s.attempts
    assert s.abandon_rate == pytest.approx(1 / 6)
    assert s.contact_rate == pytest.approx(6 / 9)
    assert (s.rang, s.ring_seconds, s.average_ring_seconds) == (
        7,
        pytest.approx(56),
        pytest.approx(8),
    )
    assert (s.talks, s.talk_seconds) == (3, pytest.approx(185))
    assert s.average_talk_seconds == pytest.approx(185 / 3)
    assert s.very_short == 1  # A5: 5 s
    assert s.reached == 2  # L2 (A2; A10 reaches it again and is not counted) and L4
    assert s.exhausted == 1  # L3, by A6
    assert s.details == {
        "ring_timeout": 1,
        "no_free_operator": 1,
        "refer_refused": 1,
        "transfer_failed": 1,
    }


def test_days_follow_the_tenant_zone_and_sunday_has_25_hours(app, data, rolled):
    assert (SUNDAY.end - SUNDAY.start).total_seconds() == 25 * 3600
    with app.app_context():
        saturday = figures.summary(data.tenant_id, SATURDAY.start, SATURDAY.end)
        sunday = figures.summary(data.tenant_id, SUNDAY.start, SUNDAY.end)
    assert (saturday.attempts, saturday.picked_up) == (2, 1)  # A1, A2
    assert (sunday.attempts, sunday.picked_up) == (7, 5)  # A3 (Sunday in Berlin) to A10
    assert sunday.no_free_operator == 1


def test_the_heat_map_puts_both_0230s_in_one_cell(app, data, rolled):
    with app.app_context():
        hours = figures.by_hour(data.tenant_id, WEEKEND.start, WEEKEND.end)
    cells = figures.heat_map(hours, BERLIN)
    assert cells == {
        (6, 10): {"attempts": 2, "picked_up": 1},  # A1, A2
        (7, 0): {"attempts": 1, "picked_up": 1},  # A3
        (7, 2): {"attempts": 2, "picked_up": 1},  # A4 at 02:30 CEST, A5 at 02:30 CET
        (7, 10): {"attempts": 1, "picked_up": 1},  # A6
        (7, 11): {"attempts": 1, "picked_up": 0},  # A7
        (7, 12): {"attempts": 1, "picked_up": 1},  # A8
        (7, 13): {"attempts": 1, "picked_up": 1},  # A10
    }


def test_trends_by_day_week_and_month(app, data, rolled):
    with app.app_context():
        hours = figures.by_hour(data.tenant_id, WEEKEND.start, WEEKEND.end)
    days = figures.trend(hours, BERLIN, "day")
    assert [(day, v["attempts"], v["picked_up"], v["transferred"]) for day, v in days] == [
        (date(2026, 10, 24), 2, 1, 1),
        (date(2026, 10, 25), 7, 5, 2),
    ]
    weeks = figures.trend(hours, BERLIN, "week")
    assert [(day, v["attempts"]) for day, v in weeks] == [(date(2026, 10, 19), 9)]
    months = figures.trend(hours, BERLIN, "month")
    assert [(day, v["picked_up"]) for day, v in months] == [(date(2026, 10, 1), 6)]


def test_per_operator(app, data, rolled):
    with app.app_context():
        rows = figures.per_operator(data.tenant_id, WEEKEND.start, WEEKEND.end)
    o1, o2 = rows[data.o1], rows[data.o2]
    assert (o1.offered, o1.transferred, o1.failed_transfers) == (3, 2, 1)
    assert (o1.talks, o1.talk_seconds, o1.very_short) == (2, pytest.approx(180), 0)
    # A2's wrap-up ended with Finish 20 s after the talk; A10's never did (no Finish).
    assert (o1.wrap_ups, o1.wrap_up_seconds) == (1, pytest.approx(20))
    assert o1.on_line_seconds == pytest.approx(6 * 3600)  # 2 h + 4 h
    assert o1.free_seconds == pytest.approx(6 * 3600 - 180 - 20)
    assert o1.occupancy == pytest.approx((180 + 20) / (6 * 3600))
    assert (o2.transferred, o2.failed_transfers, o2.very_short) == (1, 1, 1)
    assert (o2.wrap_ups, o2.wrap_up_seconds) == (1, 0)  # straight to Finish
    # Still on line: counted to the end of the period (25 Oct 23:00 UTC), which is past.
    assert o2.on_line_seconds == pytest.approx(22 * 3600)
    assert o2.occupancy == pytest.approx(5 / (22 * 3600))


def test_on_line_time_is_cut_at_the_edges_of_days(app, data, rolled):
    with app.app_context():
        saturday = figures.per_operator(data.tenant_id, SATURDAY.start, SATURDAY.end)
        sunday = figures.per_operator(
            data.tenant_id, SUNDAY.start, SUNDAY.end, now=dataset.at(25, 3)
        )
    # O1's 21:00-23:00 UTC session crosses Berlin's midnight (22:00 UTC).
    assert saturday[data.o1].on_line_seconds == pytest.approx(3600)
    assert sunday[data.o1].on_line_seconds == pytest.approx(3600 + 4 * 3600)
    assert sunday[data.o2].on_line_seconds == pytest.approx(2 * 3600)  # until "now"


def test_failed_transfers_with_their_reasons(app, data, rolled):
    with app.app_context():
        rows = figures.failed_transfers(data.tenant_id, WEEKEND.start, WEEKEND.end)
    assert sorted(rows) == sorted(
        [(data.o1, data.tv, "refer_refused", 405, 1), (data.o2, data.tv, "transfer_failed", 480, 1)]
    )


def test_each_campaign_apart(app, data, rolled):
    """The campaign "TV offer" (L3, L4, L5: A3, A5, A6, A7, A8) and the default one (A1, A2,
    A4, A10; A9 in progress), read raw, partly and fully rolled up."""
    with app.app_context():
        tv = figures.summary(data.tenant_id, WEEKEND.start, WEEKEND.end, data.tv)
        default = figures.summary(data.tenant_id, WEEKEND.start, WEEKEND.end, data.default_campaign)
        every = figures.summary(data.tenant_id, WEEKEND.start, WEEKEND.end)
        apart = figures.by_campaign(data.tenant_id, WEEKEND.start, WEEKEND.end)
    assert (tv.attempts, tv.picked_up, tv.transferred) == (5, 4, 1)
    assert (tv.no_free_operator, tv.abandon_rate) == (1, pytest.approx(1 / 4))  # A3
    assert (tv.unavailable, tv.technical_error, tv.reached, tv.exhausted) == (1, 2, 1, 1)
    assert (default.attempts, default.picked_up, default.transferred) == (4, 2, 2)
    assert (default.no_free_operator, default.abandon_rate) == (0, 0.0)
    assert (default.no_answer, default.busy, default.reached, default.very_short) == (1, 1, 1, 0)
    assert apart == {data.tv: tv, data.default_campaign: default}
    # The campaigns add up to the whole, figure by figure.
    for name in ("attempts", "picked_up", "transferred", "rang", "talks", "reached"):
        assert getattr(tv, name) + getattr(default, name) == getattr(every, name), name
    assert tv.talk_seconds + default.talk_seconds == pytest.approx(every.talk_seconds)


def test_one_campaigns_hours_operators_and_failed_transfers(app, data, rolled):
    with app.app_context():
        hours = figures.by_hour(data.tenant_id, WEEKEND.start, WEEKEND.end, data.tv)
        operators = figures.per_operator(
            data.tenant_id, WEEKEND.start, WEEKEND.end, campaign_id=data.tv
        )
        whole = figures.per_operator(data.tenant_id, WEEKEND.start, WEEKEND.end)
        failed = figures.failed_transfers(
            data.tenant_id, WEEKEND.start, WEEKEND.end, data.default_campaign
        )
        received = figures.received_by_campaign(data.tenant_id, WEEKEND.start, WEEKEND.end)
    assert figures.heat_map(hours, BERLIN) == {
        (7, 0): {"attempts": 1, "picked_up": 1},  # A3
        (7, 2): {"attempts": 1, "picked_up": 1},  # A5 (A4 is the default campaign's)
        (7, 10): {"attempts": 1, "picked_up": 1},  # A6
        (7, 11): {"attempts": 1, "picked_up": 0},  # A7
        (7, 12): {"attempts": 1, "picked_up": 1},  # A8
    }
    # O1 got one call of the campaign (A6, failed); O2 two (A5, A8).
    o1, o2 = operators[data.o1], operators[data.o2]
    assert (o1.offered, o1.transferred, o1.failed_transfers, o1.talks) == (1, 0, 1, 0)
    assert (o1.talk_seconds, o1.wrap_up_seconds) == (0, 0)
    # On line for every campaign at once: time on line, free and occupancy are O1's whole.
    assert o1.on_line_seconds == whole[data.o1].on_line_seconds == pytest.approx(6 * 3600)
    assert o1.free_seconds == pytest.approx(whole[data.o1].free_seconds)
    assert o1.occupancy == pytest.approx(whole[data.o1].occupancy)
    assert (o2.offered, o2.transferred, o2.failed_transfers, o2.very_short) == (2, 1, 1, 1)
    assert failed == []  # both failed transfers were the campaign's
    assert received == {(data.o1, data.default_campaign): 2, (data.o2, data.tv): 1}


def test_each_campaigns_hours_of_the_day(app, data, rolled):
    """When each campaign's customers pick up, both days together (Berlin hours)."""
    with app.app_context():
        found = figures.hour_of_day_by_campaign(data.tenant_id, WEEKEND.start, WEEKEND.end, BERLIN)
    assert found == {
        data.tv: {
            0: {"attempts": 1, "picked_up": 1},  # A3
            2: {"attempts": 1, "picked_up": 1},  # A5
            10: {"attempts": 1, "picked_up": 1},  # A6
            11: {"attempts": 1, "picked_up": 0},  # A7
            12: {"attempts": 1, "picked_up": 1},  # A8
        },
        data.default_campaign: {
            2: {"attempts": 1, "picked_up": 0},  # A4
            10: {"attempts": 2, "picked_up": 1},  # A1, A2 (Saturday)
            13: {"attempts": 1, "picked_up": 1},  # A10
        },
    }


def test_another_tenants_campaign_finds_nothing(app, data, tenant_b):
    """Tenant B's campaign as a filter of tenant A's figures: nothing, whether raw or rolled
    up (B has the same data set, and its own "TV offer")."""
    with app.app_context():
        theirs = db.session.scalar(
            select(Campaign.id).where(
                Campaign.tenant_id == tenant_b.id, Campaign.key == "tv-dataset"
            )
        )
        for now in (None, FULLY):
            if now is not None:
                rollup.roll_up_all(now=now)
            args = (data.tenant_id, WEEKEND.start, WEEKEND.end)
            assert figures.summary(*args, theirs).attempts == 0
            assert figures.by_hour(*args, theirs) == {}
            assert figures.per_operator(*args, campaign_id=theirs) == {}
            assert figures.failed_transfers(*args, theirs) == []
            assert figures.summary(*args, 10**17).attempts == 0  # no campaign at all


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kolkata", "America/St_Johns", "UTC"])
def test_roll_ups_agree_with_raw_rows_in_every_zone(app, data, zone):
    """Each local day of the week around the data, in zones whole, half an hour and three
    and a half hours off UTC: the same figures from raw rows and from roll-ups (whose
    part-hours at the edges of a day are read raw)."""
    local = ZoneInfo(zone)
    days = [figures.Period(date(2026, 10, d), date(2026, 10, d), local) for d in range(22, 28)]
    with app.app_context():
        raw = [figures.summary(data.tenant_id, p.start, p.end) for p in days]
        raw_ops = [figures.per_operator(data.tenant_id, p.start, p.end) for p in days]
        raw_tv = [figures.summary(data.tenant_id, p.start, p.end, data.tv) for p in days]
        raw_tv_ops = [
            figures.per_operator(data.tenant_id, p.start, p.end, campaign_id=data.tv) for p in days
        ]
        rollup.roll_up_all(now=FULLY)
        rolled = [figures.summary(data.tenant_id, p.start, p.end) for p in days]
        rolled_ops = [figures.per_operator(data.tenant_id, p.start, p.end) for p in days]
        rolled_tv = [figures.summary(data.tenant_id, p.start, p.end, data.tv) for p in days]
        rolled_tv_ops = [
            figures.per_operator(data.tenant_id, p.start, p.end, campaign_id=data.tv) for p in days
        ]
    assert rolled == raw
    assert rolled_ops == raw_ops
    assert rolled_tv == raw_tv
    assert rolled_tv_ops == raw_tv_ops
    assert sum(s.attempts for s in raw_tv) == 5
    assert sum(s.attempts for s in raw) == 9


def test_the_roll_up_tables_hold_the_raw_sums_hour_by_hour(app, data):
    with app.app_context():
        rollup.roll_up_all(now=FULLY)
        for kind, keys in (
            (figures.HOURS, ["hour", "campaign_id", "outcome", "detail"]),
            (
                figures.OPERATORS,
                ["hour", "campaign_id", "operator_id", "detail", "transfer_sip_code"],
            ),
        ):
            table = kind.table
            stored = {}
            for row in db.session.scalars(select(table).where(table.tenant_id == data.tenant_id)):
                key = tuple(figures.utc(row.hour) if k == "hour" else getattr(row, k) for k in keys)
                stored[key] = {name: getattr(row, name) for name in kind.names}
            raw = {}
            query = figures.raw_select(
                kind, data.tenant_id, dataset.at(1, 0), dataset.at(31, 0), keys
            )
            for row in db.session.execute(query):
                m = row._mapping
                key = tuple(figures.utc(m["hour"]) if k == "hour" else m[k] for k in keys)
                raw[key] = {name: m[name] for name in kind.names}
            assert stored.keys() == raw.keys()
            for key, values in raw.items():
                assert stored[key] == pytest.approx(values), key
        assert (
            db.session.scalar(
                select(ReportHour.attempts).where(
                    ReportHour.tenant_id == data.tenant_id,
                    ReportHour.hour == dataset.at(25, 9),
                    ReportHour.detail == "refer_refused",
                )
            )
            == 1
        )


def test_the_roll_up_is_idempotent_and_incremental(app, data):
    with app.app_context():
        first = rollup.roll_up(data.tenant_id, now=PARTLY)
        assert first == 16 + 12  # 24 Oct 08:00 to 25 Oct 12:00 UTC
        assert rollup.roll_up(data.tenant_id, now=PARTLY) == 0  # a second scheduler: nothing
        count = db.session.query(ReportHour).filter_by(tenant_id=data.tenant_id).count()
        assert rollup.roll_up(data.tenant_id, now=FULLY) == 12 + 23  # to 26 Oct 23:00
        # one more row: the hour of A10 (A9, in progress, is not counted)
        assert db.session.query(ReportHour).filter_by(tenant_id=data.tenant_id).count() == count + 1
        # Redoing rolled hours (after a crash between delete and insert, say) writes the same.
        state = db.session.get(ReportRollup, data.tenant_id)
        state.rolled_until = dataset.at(24, 8)
        db.session.commit()
        before = sorted(
            (figures.utc(r.hour), r.outcome, r.attempts)
            for r in db.session.scalars(
                select(ReportHour).where(ReportHour.tenant_id == data.tenant_id)
            )
        )
        rollup.roll_up(data.tenant_id, now=FULLY)
        after = sorted(
            (figures.utc(r.hour), r.outcome, r.attempts)
            for r in db.session.scalars(
                select(ReportHour).where(ReportHour.tenant_id == data.tenant_id)
            )
        )
        assert after == before
        assert db.session.query(ReportOperatorHour).filter_by(tenant_id=data.tenant_id).count() == 5


def test_other_tenants_rows_never_count(app, tenant_a, tenant_b):
    dataset.build(app, tenant_b.id, suffix=" B")
    with app.app_context():
        rollup.roll_up_all(now=FULLY)
        s = figures.summary(tenant_a.id, WEEKEND.start, WEEKEND.end)
        assert s.attempts == 0
        assert figures.per_operator(tenant_a.id, WEEKEND.start, WEEKEND.end) == {}
        assert figures.by_hour(tenant_a.id, WEEKEND.start, WEEKEND.end) == {}


@pytest.mark.parametrize(
    "since",
    [
        dataset.at(23, 0),
        dataset.at(24, 22, 15),
        dataset.at(25, 1, 45),
        dataset.at(25, 12, 10),
        dataset.at(27, 0),
    ],
)
def test_the_engine_reads_the_abandon_rate_from_the_roll_up_as_from_raw_rows(
    app, data, rolled, database_url, since
):
    """Predictive pacing's measured abandon rate (DialingStore.abandon_counts) sums the
    rolled-up hours and counts the rest raw: the same as counting every attempt, whether
    nothing, part or all of the data set is rolled up, and wherever the window starts (A3,
    abandoned at 22:30, falls in a part hour when the window starts at 22:15); each
    campaign's apart (A3 is the TV offer's), as each campaign's pacer reads it."""

    def counted(*where) -> tuple[int, int]:
        return tuple(
            db.session.execute(
                select(
                    func.count(Attempt.answer_at),
                    func.count().filter(Attempt.detail == "no_free_operator"),
                ).where(Attempt.tenant_id == data.tenant_id, Attempt.invite_at >= since, *where)
            ).one()
        )

    with app.app_context():
        expected = counted()
        tv = counted(Attempt.campaign_id == data.tv)
        default = counted(Attempt.campaign_id == data.default_campaign)
    assert since > dataset.at(25, 0) or expected[1] == tv[1] == 1  # the window holds A3, or not
    assert default[1] == 0 and expected[0] == tv[0] + default[0]
    store = DialingStore(database_url, SecretBox(DEV_ENCRYPTION_KEY))
    try:
        assert store.abandon_counts(data.tenant_id, since) == expected
        assert store.abandon_counts(data.tenant_id, since, data.tv) == tv
        assert store.abandon_counts(data.tenant_id, since, data.default_campaign) == default
    finally:
        store.close()
