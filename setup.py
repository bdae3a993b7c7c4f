"""What pyproject.toml cannot say: the Cython extensions of engine/, the migrations that travel
inside the package, and the translations compiled as the package is built.

- Extensions: every engine/**/*.pyx. Generated C files are build output (see .gitignore);
  `cythonize` regenerates them.
- Migrations stay at the top of the repository (migrations/) and travel in a wheel as the
  package `webapp.migrations` (webapp/__init__.py finds them in either place).
- Translations: a built package carries each webapp/translations/*/LC_MESSAGES/messages.po
  compiled to messages.mo, and not the .po; a checkout (an editable install too) compiles its
  own when they are missing or stale (webapp/i18n.py).
"""

from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, find_namespace_packages, setup
from setuptools.command.build_py import build_py

TRANSLATIONS = Path("webapp/translations")


class BuildWithTranslations(build_py):
    """build_py, and each .po of webapp/translations compiled to its .mo in the build."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            for po_path, mo_path in self._catalogues():
                self._compile(po_path, mo_path)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        compiled = [] if self.editable_mode else [str(mo) for _po, mo in self._catalogues()]
        return [*super().get_outputs(include_bytecode), *compiled]

    def _catalogues(self) -> list[tuple[Path, Path]]:
        return [
            (po_path, Path(self.build_lib) / po_path.with_suffix(".mo"))
            for po_path in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))
        ]

    @staticmethod
    def _compile(po_path: Path, mo_path: Path) -> None:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parent.parent.name)
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with mo_path.open("wb") as mo_file:
            write_mo(mo_file, catalog)


extensions = [
    Extension(str(pyx.with_suffix("")).replace("/", "."), [str(pyx)], extra_compile_args=["-O3"])
    for pyx in sorted(Path("engine").rglob("*.pyx"))
]

setup(
    packages=[
        *find_namespace_packages(include=["webapp", "webapp.*", "engine", "engine.*"]),
        "webapp.migrations",
        "webapp.migrations.versions",
    ],
    package_dir={"webapp.migrations": "migrations"},
    cmdclass={"build_py": BuildWithTranslations},
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
        annotate=False,
    ),
)
