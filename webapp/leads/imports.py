"""CSV import of leads: the uploaded file, what each column becomes, and the import job.

The web process copies an upload under `AUTOCALL_UPLOAD_DIR` as `<tenant>-<token>.csv` a
megabyte at a time (never the whole file in memory), reads it through once to learn its
encoding and count its rows, and keeps a small `.json` beside it (the original name, the
encoding, the delimiter, the row count); the mapping page reads only the file's first rows;
the admin maps the columns, chooses the campaign the leads go to and looks at a preview; the
job on the `default` queue reads the file row by row and creates the leads in that campaign
through `services.leads.prepare` in batches (a commit
per batch), lists the rows it could not take with their reason, skips CRM ids already known,
deletes the file, and wakes the tenant's engine once. Memory stays the same whatever the
file's size (tests/webapp/leads/test_import_memory.py).
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask import current_app
from flask_babel import gettext as _
from rq import get_current_job
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.bus import wake_engine
from webapp.extensions import db
from webapp.jobs.queues import job_context
from webapp.models import Lead, Tenant
from webapp.services.campaigns import CampaignError, campaign_for_leads
from webapp.services.leads import LeadError, NewLead, prepare

#: Targets a file may map from one column only (card fields take any number).
SINGLE = ("phone", "name", "external_id", "priority", "time_zone")
BATCH = 500
#: Bad rows and duplicates listed one by one; beyond this only counted.
MAX_LISTED = 1000
#: Uploads never imported are removed after this many seconds.
ABANDONED_AFTER = 86400
#: Rows the mapping page reads: the column names, the guess and the preview need no more.
HEAD_ROWS = 100
#: Bytes copied or decoded at a time.
CHUNK = 1024 * 1024

_TOKEN = re.compile(r"[A-Za-z0-9_\-]{16,64}\Z")
_WHOLE = re.compile(r"[+-]?\d+(\.0*)?\Z")
#: Column names (lower case, '_' and '-' as spaces) recognised for each lead field.
_GUESSES = {
    "phone": {
        "phone",
        "phone number",
        "telephone",
        "tel",
        "mobile",
        "number",
        "msisdn",
        "телефон",
        "номер",
        "номер телефона",
        "мобильный",
        "тел",
    },
    "name": {
        "name",
        "full name",
        "customer",
        "client",
        "contact",
        "имя",
        "фио",
        "клиент",
        "контакт",
    },
    "external_id": {"external id", "crm id", "id", "ид", "код", "id в crm", "внешний id"},
    "priority": {"priority", "приоритет"},
    "time_zone": {"time zone", "timezone", "tz", "часовой пояс"},
}


class ImportFileError(ValueError):
    """The file cannot be read as CSV; the message says why, for the admin."""


@dataclass
class Upload:
    tenant_id: int
    token: str
    filename: str
    encoding: str
    delimiter: str
    job_id: str | None = None  # set when the import starts: a file is imported once
    #: Records in the file (empty ones left out), the header row included if it is one.
    rows: int = 0

    @property
    def path(self) -> Path:
        return upload_dir() / f"{self.tenant_id}-{self.token}.csv"

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(".json")

    def records(self) -> Iterator[list[str]]:
        """The file's records one by one, empty ones left out; only one is in memory."""
        with self.path.open(encoding=self.encoding, newline="") as text:
            for row in csv.reader(text, delimiter=self.delimiter):
                if any(cell.strip() for cell in row):
                    yield row

    def head(self, count: int = HEAD_ROWS) -> list[list[str]]:
        """The first `count` records: what the mapping page needs."""
        return list(itertools.islice(self.records(), count))


def upload_dir() -> Path:
    return Path(current_app.extensions["autocall.config"].upload_dir)


def max_bytes() -> int:
    return current_app.extensions["autocall.config"].import_max_megabytes * 1024 * 1024


def too_large() -> ImportFileError:
    return ImportFileError(
        _(
            "The file is larger than %(size)s MB: split it into smaller files.",
            size=max_bytes() // (1024 * 1024),
        )
    )


# --- reading a file --------------------------------------------------------------------------


def check_start(head: bytes) -> str | None:
    """Refuse what is surely no CSV from the file's first bytes; "utf-16" when it starts
    with a UTF-16 byte-order mark, else None (UTF-8 or Windows-1251, see `encoding_of`)."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            _("This is an Excel workbook, not CSV: in Excel use File, Save as, CSV.")
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in head[:4096]:
        raise ImportFileError(_("This is not a text file; upload a CSV file."))
    return None


def encoding_of(path: Path) -> str:
    """UTF-8 with or without BOM, else Windows-1251 (what Russian Excel writes as 'CSV'):
    the first that decodes the whole file, read a megabyte at a time."""
    for encoding in ("utf-8-sig", "cp1251"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as data:
                while chunk := data.read(CHUNK):
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise ImportFileError(_("The file is neither UTF-8 nor Windows-1251 text; save it as CSV."))


def sniff_delimiter(text: str) -> str:
    """The delimiter the first line uses most: ';' (Russian and European Excel), ',' or tab."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def save_upload(tenant_id: int, filename: str, data: IO[bytes]) -> Upload:
    """Copy the uploaded file to the upload folder a megabyte at a time, check that it
    reads as CSV (one pass, row by row) and keep it for the mapping page and the job."""
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(folder)
    upload = Upload(
        tenant_id, secrets.token_urlsafe(18), Path(filename or "").name[:200], "utf-8-sig", ","
    )
    try:
        size, head = 0, b""
        with upload.path.open("wb") as copy:
            while chunk := data.read(CHUNK):
                size += len(chunk)
                if size > max_bytes():
                    raise too_large()
                if len(head) < 4096:
                    head += chunk[: 4096 - len(head)]
                copy.write(chunk)
        upload.encoding = check_start(head) or encoding_of(upload.path)
        with upload.path.open(encoding=upload.encoding, newline="") as text:
            upload.delimiter = sniff_delimiter(text.read(64 * 1024))
        upload.rows = _count_rows(upload)
        if not upload.rows:
            raise ImportFileError(_("The file is empty."))
    except BaseException:
        upload.path.unlink(missing_ok=True)
        raise
    _write_meta(upload)
    return upload


def _count_rows(upload: Upload) -> int:
    """Records in the file, empty ones left out; a file the csv module cannot read is refused
    with the line where its broken record starts."""
    count, line = 0, 1
    try:
        with upload.path.open(encoding=upload.encoding, newline="") as text:
            reader = csv.reader(text, delimiter=upload.delimiter)
            for row in reader:
                count += any(cell.strip() for cell in row)
                line = reader.line_num + 1
    except UnicodeDecodeError:
        raise ImportFileError(
            _("The file is neither UTF-8 nor Windows-1251 text; save it as CSV.")
        ) from None
    except csv.Error:
        # A quote never closed makes the rest of the file one cell, longer than the csv
        # module takes (128 KB): say where it starts rather than read it all.
        raise ImportFileError(
            _(
                'The row on line %(line)s cannot be read: a quote (") opened in it is not '
                "closed, or a cell is longer than 128 KB. Fix it and upload the file again.",
                line=line,
            )
        ) from None
    return count


def _write_meta(upload: Upload) -> None:
    meta = {
        "filename": upload.filename,
        "encoding": upload.encoding,
        "delimiter": upload.delimiter,
        "job_id": upload.job_id,
        "rows": upload.rows,
    }
    upload.meta_path.write_text(json.dumps(meta))


def mark_started(upload: Upload, job_id: str) -> None:
    upload.job_id = job_id
    _write_meta(upload)


def find_upload(tenant_id: int, token: str) -> Upload | None:
    if not _TOKEN.match(token or ""):
        return None
    upload = Upload(tenant_id, token, "", "utf-8", ",")
    try:
        meta = json.loads(upload.meta_path.read_text())
    except (OSError, ValueError):
        return None
    upload.filename, upload.encoding = meta["filename"], meta["encoding"]
    upload.delimiter, upload.job_id = meta["delimiter"], meta.get("job_id")
    if not upload.path.exists():
        return None
    upload.rows = meta["rows"] if "rows" in meta else _count_rows(upload)  # older uploads
    return upload


def delete_upload(upload: Upload) -> None:
    upload.path.unlink(missing_ok=True)
    upload.meta_path.unlink(missing_ok=True)


def _remove_abandoned(folder: Path) -> None:
    limit = time.time() - ABANDONED_AFTER
    for path in folder.glob("*-*.*"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            pass


# --- columns ---------------------------------------------------------------------------------


def column_names(rows: list[list[str]], header: bool) -> list[str]:
    """The names of the file's columns: its first row, or Column 1, Column 2, ..."""
    width = max((len(row) for row in rows[:100]), default=0)
    first = rows[0] if rows and header else []
    return [(first[i].strip() if i < len(first) else "") or f"Column {i + 1}" for i in range(width)]


def guess_mapping(rows: list[list[str]], header: bool) -> list[str]:
    """A first guess of each column's target from its name (or, without names, the first
    column that holds a number is the phone); anything else goes onto the card."""
    names = column_names(rows, header)
    mapping = ["card"] * len(names)
    if header:
        for i, name in enumerate(names):
            key = re.sub(r"[_\-]+", " ", name.lower()).strip()
            for target, words in _GUESSES.items():
                if key in words and target not in mapping:
                    mapping[i] = target
                    break
    if "phone" not in mapping and rows:
        sample = rows[1 if header and len(rows) > 1 else 0]
        for i, cell in enumerate(sample):
            if i < len(mapping) and len(re.sub(r"\D", "", cell)) >= 7:
                mapping[i] = "phone"
                break
    return mapping


def new_lead(row: list[str], mapping: list[str], names: list[str]) -> NewLead:
    """What one row says about a lead, under the mapping."""
    values: dict[str, str] = {}
    card: dict[str, str] = {}
    for i, target in enumerate(mapping):
        value = row[i].strip() if i < len(row) else ""
        if target == "card":
            if value:
                card[names[i]] = value
        elif target:
            values[target] = value
    priority: int | str = values.get("priority", "") or 0
    if isinstance(priority, str) and _WHOLE.match(priority):
        priority = int(float(priority))
    # A priority that is not a whole number stays text: prepare() refuses it in its words.
    return NewLead(
        phone=values.get("phone", ""),
        name=values.get("name", ""),
        external_id=values.get("external_id") or None,
        card=card or None,
        priority=priority,
        time_zone=values.get("time_zone") or None,
    )


def first_row_number(header: bool) -> int:
    """Rows are numbered as a spreadsheet shows them: the header is row 1."""
    return 2 if header else 1


def preview(
    tenant: Tenant, rows: list[list[str]], mapping: list[str], header: bool, count: int = 10
) -> list[dict]:
    """The first rows with the lead each becomes, or the reason it cannot."""
    names = column_names(rows, header)
    data = rows[1:] if header else rows
    shown = []
    for number, row in enumerate(data[:count], start=first_row_number(header)):
        try:
            lead, error = prepare(tenant, new_lead(row, mapping, names)), None
        except LeadError as refused:
            lead, error = None, refused
        shown.append({"row": number, "lead": lead, "error": error})
    return shown


# --- the job ---------------------------------------------------------------------------------


def import_leads(
    tenant_id: int, token: str, mapping: list[str], header: bool, campaign_id: int | None = None
) -> dict:
    """The RQ job: import the upload under the mapping into the campaign (None: the default
    one); returns what happened. A campaign archived since the import was started takes
    nothing: the result says so (`refused`) and the file is deleted like after an import."""
    with job_context():
        upload = find_upload(tenant_id, token)
        if upload is None:
            raise FileNotFoundError("the uploaded file is gone; upload it again")
        tenant = db.session.get(Tenant, tenant_id)
        try:
            campaign = campaign_for_leads(tenant, campaign_id)
            result = _import(tenant, upload, mapping, header, campaign.id)
        except CampaignError as error:
            result = {**_empty_result(0), "refused": error.message}
        finally:
            delete_upload(upload)
        if result["imported"]:
            wake_engine(tenant_id, "new_lead")
        return result


def _empty_result(total: int) -> dict:
    return {
        "total": total,
        "imported": 0,
        "bad": [],
        "bad_count": 0,
        "duplicates": [],
        "duplicate_count": 0,
    }


def _import(
    tenant: Tenant, upload: Upload, mapping: list[str], header: bool, campaign_id: int
) -> dict:
    """Read the file row by row, a batch at a time: memory holds one batch, whatever the
    file's size. A CRM id seen earlier in the same file is caught in its batch, or by the
    database once the earlier batch is committed; both are reported as duplicates."""
    job = get_current_job()
    names = column_names(upload.head(), header)
    total = max(0, upload.rows - (1 if header else 0))
    records = upload.records()
    if header:
        next(records, None)
    result = _empty_result(total)

    def duplicate(number: int, external_id: str) -> None:
        result["duplicate_count"] += 1
        if len(result["duplicates"]) < MAX_LISTED:
            result["duplicates"].append([number, external_id])

    first = first_row_number(header)
    done = 0
    while rows := list(itertools.islice(records, BATCH)):
        batch: list[tuple[int, Lead]] = []
        seen: set[str] = set()  # CRM ids of this batch
        for number, row in enumerate(rows, start=first + done):
            try:
                lead = prepare(tenant, new_lead(row, mapping, names))
                lead.campaign_id = campaign_id
            except LeadError as error:
                result["bad_count"] += 1
                if len(result["bad"]) < MAX_LISTED:
                    result["bad"].append([number, error.field, error.message])
                continue
            if lead.external_id is not None:
                if lead.external_id in seen:
                    duplicate(number, lead.external_id)
                    continue
                seen.add(lead.external_id)
            batch.append((number, lead))
        done += len(rows)
        saved, skipped = _save(tenant.id, batch)
        result["imported"] += saved
        for row_number, lead in skipped:
            duplicate(row_number, lead.external_id)
        if job is not None:
            job.meta["progress"] = {"done": min(done, total), "total": total}
            job.save_meta()
    return result


def _existing(tenant_id: int, external_ids: list[str]) -> set[str]:
    if not external_ids:
        return set()
    return set(
        db.session.scalars(
            select(Lead.external_id).where(
                Lead.tenant_id == tenant_id, Lead.external_id.in_(external_ids)
            )
        )
    )


def _save(tenant_id: int, batch: list[tuple[int, Lead]]) -> tuple[int, list]:
    """Commit a batch; (leads saved, [(row, lead)] left out because the tenant already has
    their CRM id, also when another import or the API took it in the meantime)."""
    skipped: list[tuple[int, Lead]] = []
    for _try in range(3):
        taken = _existing(tenant_id, [lead.external_id for n, lead in batch if lead.external_id])
        skipped += [(n, lead) for n, lead in batch if lead.external_id in taken]
        batch = [(n, lead) for n, lead in batch if lead.external_id not in taken]
        db.session.add_all(lead for n, lead in batch)
        try:
            db.session.commit()
            return len(batch), skipped
        except IntegrityError:
            db.session.rollback()
    raise RuntimeError("a batch of leads could not be saved three times in a row")
