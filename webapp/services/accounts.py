"""Creating tenants and people."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import Campaign, Operator, Role, Tenant, User
from webapp.tenancy import across_tenants, act_for_new_tenant


class EmailTaken(ValueError):
    """Another account already signs in with this email address."""


def email_taken(email: str) -> bool:
    """Whether any account, of any tenant, signs in with this address (they are unique)."""
    with across_tenants():
        return db.session.scalar(select(User.id).where(User.email == email)) is not None


def new_user(email: str, password: str, role: Role, tenant: Tenant | None) -> User:
    email = User.normalize_email(email)
    if email_taken(email):
        raise EmailTaken(email)
    user = User(email=email, role=role.value, tenant=tenant)
    user.set_password(password)
    db.session.add(user)
    return user


def _commit_or_email_taken(email: str) -> None:
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent sign-up with the same address won the race
        db.session.rollback()
        raise EmailTaken(email) from None


def create_tenant_with_admin(
    company: str, email: str, password: str, campaign_name: str = "Default"
) -> User:
    """Signup (and the command line, the demo): in a request, it then acts for the new tenant.
    The tenant comes with its default campaign (webapp/models/campaign.py), named
    `campaign_name` (signup names it in the admin's language)."""
    tenant = Tenant(name=company)
    act_for_new_tenant(tenant)
    db.session.add(tenant)
    user = new_user(email, password, Role.ADMIN, tenant)
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent sign-up with the same address won the race
        db.session.rollback()
        raise EmailTaken(email) from None
    db.session.execute(
        update(Campaign)
        .where(Campaign.tenant_id == tenant.id, Campaign.is_default)
        .values(name=campaign_name)
    )
    _commit_or_email_taken(email)
    return user


def create_staff(email: str, password: str) -> User:
    user = new_user(email, password, Role.STAFF, None)
    _commit_or_email_taken(email)
    return user


def create_operator(
    tenant: Tenant,
    *,
    name: str,
    email: str,
    extension: str,
    password: str,
    team_id: int | None,
) -> Operator:
    """An operator and its login; the first sign-in asks for a new password."""
    user = new_user(email, password, Role.OPERATOR, tenant)
    user.must_change_password = True
    operator = Operator(
        tenant_id=tenant.id, user=user, name=name, extension=extension, team_id=team_id
    )
    db.session.add(operator)
    return operator
