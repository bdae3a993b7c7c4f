"""English and Russian. The language follows the browser until the user picks one.

Translations are kept as `.po` source in webapp/translations; the binary `.mo` files are
build output. A built package carries the `.mo` and not the `.po` (setup.py compiles them as
it builds), so nothing is written into an installed package; a checkout (an editable install
too) has the `.po` and compiles them here when a `.mo` is missing or older than its `.po` (a
fresh clone works without a separate compile step).
"""

from __future__ import annotations

import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, request, session
from flask_babel import get_locale

from webapp.extensions import babel

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
#: Language code -> its own name, as the switch shows it.
LANGUAGES = {"en": "English", "ru": "Русский"}

log = logging.getLogger(__name__)


def compile_translations(directory: Path = TRANSLATIONS_DIR, force: bool = False) -> list[Path]:
    """Compile each messages.po to messages.mo when needed; returns the files written.
    Where there is no .po (an installed package), nothing."""
    written = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parent.parent.name)
        tmp_path = mo_path.with_suffix(".mo.tmp")
        with tmp_path.open("wb") as mo_file:
            write_mo(mo_file, catalog)
        tmp_path.replace(mo_path)  # atomic: a concurrent reader never sees half a file
        written.append(mo_path)
    return written


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES)) or "en"


def select_timezone() -> str | None:
    """Times show in the tenant's time zone; None falls back to UTC."""
    from webapp.tenancy import current_tenant

    tenant = current_tenant()
    return tenant.time_zone if tenant is not None else None


def init_app(app: Flask) -> None:
    try:
        compile_translations()  # a checkout's; an installed package has its .mo and no .po
    except OSError as error:  # a read-only checkout: use the .mo it has
        log.warning("cannot compile translations: %s", error)
    babel.init_app(
        app,
        locale_selector=select_locale,
        timezone_selector=select_timezone,
        default_translation_directories=str(TRANSLATIONS_DIR),
    )
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["get_locale"] = get_locale
