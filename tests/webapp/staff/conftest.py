"""Fixtures of the staff pages' tests: the hand-counted data set, and a client signed in as
platform staff."""

import pytest

from tests.webapp.staff import data


@pytest.fixture
def dataset(app):
    return data.load(app)


@pytest.fixture
def staff(client, auth, staff_email):
    assert auth.login(staff_email).status_code == 302
    return client
