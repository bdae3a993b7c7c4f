"""A tenant's SIP accounts (docs/portal.md, "SIP accounts"): what its campaigns dial through.
A tenant may register several (two trunks, two caller identities); each campaign names one.
The first account a tenant makes goes to every campaign that has none, so a company that
enters its PBX once dials as before. An account in use by a campaign is not deleted.

Passwords are encrypted with the deployment's key (webapp/services/secrets.py) before they
reach the database and decrypted only where the engine's `Account` is built."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update

from engine.formats import parse_host_port
from engine.sip.ua import Account
from webapp.bus import wake_engine
from webapp.extensions import db
from webapp.models import Campaign, SipAccount, Tenant
from webapp.services.secrets import SecretBox

#: The columns an account's form edits besides its password (the formats have their own).
FIELDS = (
    "name",
    "host",
    "port",
    "transport",
    "username",
    "auth_username",
    "outbound_proxy",
    "realm",
    "transfer_wait_seconds",
    "tls_ca_pem",
    "use_sips",
)
FORMAT_FIELDS = ("dial_format", "refer_format", "refer_headers")
#: The FIELDS that are numbers: kept when left out (the others are text, then empty).
_NUMBERS = ("port", "transfer_wait_seconds")


#: The port of SIP over TLS (RFC 3261 section 19.1.2): a TLS account saved with 5060 gets it.
TLS_PORT = 5061


class SipAccountError(ValueError):
    """An account that cannot be made, changed or deleted as asked; the message says why."""

    def __init__(self, message: str, campaigns: list[str] | None = None):
        super().__init__(message)
        self.message = message
        #: The names of the campaigns that hold it, when that is the reason.
        self.campaigns = campaigns or []


@dataclass(frozen=True)
class Password:
    """What the form asks of the saved password: a new one, clear it, or keep it (neither)."""

    new: str = ""
    clear: bool = False


def accounts_of(tenant: Tenant) -> list[SipAccount]:
    """The tenant's accounts, the first made first."""
    return list(
        db.session.scalars(
            select(SipAccount).where(SipAccount.tenant_id == tenant.id).order_by(SipAccount.id)
        ).all()
    )


def first_account(tenant: Tenant) -> SipAccount | None:
    accounts = accounts_of(tenant)
    return accounts[0] if accounts else None


def find_account(tenant: Tenant, name: str) -> SipAccount | None:
    """The tenant's account of this name, or None."""
    return db.session.scalar(
        select(SipAccount).where(SipAccount.tenant_id == tenant.id, SipAccount.name == name)
    )


def has_complete_account(tenant: Tenant) -> bool:
    """Whether the tenant has an account to dial with (a PBX and a username)."""
    return any(account.complete for account in accounts_of(tenant))


def dialing_on(tenant: Tenant) -> bool:
    """The company's switch is on and it has an account to dial with."""
    return bool(tenant.dialing_enabled and has_complete_account(tenant))


def campaigns_using(tenant: Tenant) -> dict[int, list[Campaign]]:
    """{account id: the campaigns that dial through it, by name}."""
    campaigns = db.session.scalars(
        select(Campaign)
        .where(Campaign.tenant_id == tenant.id, Campaign.sip_account_id.is_not(None))
        .order_by(Campaign.name)
    ).all()
    using: dict[int, list[Campaign]] = {}
    for campaign in campaigns:
        using.setdefault(campaign.sip_account_id, []).append(campaign)  # type: ignore[arg-type]
    return using


def _check_name(tenant_id: int, name: str, other_than: int | None = None) -> str:
    name = (name or "").strip()
    if not 0 < len(name) <= 100:
        raise SipAccountError("A SIP account's name has 1 to 100 characters.")
    query = select(func.count()).where(SipAccount.tenant_id == tenant_id, SipAccount.name == name)
    if other_than is not None:
        query = query.where(SipAccount.id != other_than)
    if db.session.scalar(query):
        raise SipAccountError(f"Another SIP account has the name {name!r}.")
    return name


def _set(account: SipAccount, values: dict, password: Password, secrets: SecretBox) -> None:
    for name in FIELDS:
        if name in values:
            value = values[name]
            if value is None and name in _NUMBERS:
                continue  # left out: kept (a new account's default)
            setattr(account, name, "" if value is None else value)
    if account.transport == "tls" and account.port == 5060:
        account.port = TLS_PORT  # 5060 is plain SIP's port: TLS's is 5061 (RFC 3261 19.1.2)
    if account.transport != "tls":
        account.use_sips = False  # sips: only over TLS
    if password.clear:
        account.password_encrypted = None
    elif password.new:
        account.password_encrypted = secrets.encrypt(password.new)


def create_account(
    tenant: Tenant, values: dict, password: Password, secrets: SecretBox
) -> SipAccount:
    """A new account of the tenant (values: FIELDS, checked by the form; the name is checked
    here too). The tenant's first account goes to every campaign that has none. Wakes the
    engine."""
    name = _check_name(tenant.id, values.get("name", ""))
    first = not accounts_of(tenant)
    account = SipAccount(tenant_id=tenant.id)
    _set(account, {**values, "name": name}, password, secrets)
    db.session.add(account)
    db.session.flush()
    if first:
        db.session.execute(
            update(Campaign)
            .where(Campaign.tenant_id == tenant.id, Campaign.sip_account_id.is_(None))
            .values(sip_account_id=account.id)
        )
    db.session.commit()
    wake_engine(tenant.id, "settings")
    return account


def update_account(
    account: SipAccount, values: dict, password: Password, secrets: SecretBox
) -> None:
    """New values (FIELDS, or FORMAT_FIELDS) for an account; a running engine registers
    again at once."""
    if "name" in values:
        values = {**values, "name": _check_name(account.tenant_id, values["name"], account.id)}
    _set(account, values, password, secrets)
    for name in FORMAT_FIELDS:
        if name in values:
            setattr(account, name, values[name] or "")
    db.session.commit()
    wake_engine(account.tenant_id, "settings")


def delete_account(account: SipAccount) -> None:
    """Delete an account no campaign dials through; SipAccountError naming the campaigns
    that do (archived ones too: started again, they would have nothing to dial with)."""
    names = list(
        db.session.scalars(
            select(Campaign.name)
            .where(Campaign.tenant_id == account.tenant_id, Campaign.sip_account_id == account.id)
            .order_by(Campaign.name)
        ).all()
    )
    if names:
        raise SipAccountError(
            f"The SIP account {account.name!r} is used by: {', '.join(names)}.", names
        )
    tenant_id = account.tenant_id
    db.session.delete(account)
    db.session.commit()
    wake_engine(tenant_id, "settings")


def outbound_proxy(text: str) -> tuple[str, int] | None:
    """An outbound proxy as the form took it ("host", "host:port" or "[v6]:port", port 5060
    by default, a "sip:" prefix ignored) as an address; None when empty or unreadable."""
    text = (text or "").strip().removeprefix("sip:")
    if not text:
        return None
    try:
        return parse_host_port(text)
    except ValueError:
        return None


def engine_account(sip_account: SipAccount, secrets: SecretBox) -> Account:
    """The engine's `Account` for a saved account, its password decrypted (SecretError when
    the deployment's key changed since it was saved)."""
    password = ""
    if sip_account.password_encrypted:
        password = secrets.decrypt(sip_account.password_encrypted)
    return Account(
        sip_account.host,
        sip_account.port,
        sip_account.username,
        password,
        auth_username=sip_account.auth_username or None,
        realm=sip_account.realm or None,
        outbound_proxy=outbound_proxy(sip_account.outbound_proxy),
        transport=sip_account.transport,
        tls_ca_pem=sip_account.tls_ca_pem or "",
        use_sips=bool(sip_account.use_sips),
    )
