"""django-import-export resource with the export columns, for small in-memory exports.

It renders exactly the cells of the streamed CSV (same `Row`s, same cell formatting), so a small
admin export and a package agree. It builds a whole `tablib.Dataset` in memory, as
django-import-export's default export does (the baseline of `make bench-export`, docs/performance.md):
large exports go through `package.write_package` (streamed) instead.
"""

from __future__ import annotations

from import_export import resources
from import_export.fields import Field

from .columns import COLUMN_NAMES
from .formatting import csv_cell


def _field(index: int, name: str) -> Field:
    return Field(column_name=name, dehydrate_method=lambda row: csv_cell(row.values[index]), readonly=True)


ReadingResource = type(
    "ReadingResource",
    (resources.Resource,),
    {
        **{name: _field(i, name) for i, name in enumerate(COLUMN_NAMES)},
        "Meta": type("Meta", (), {"export_order": COLUMN_NAMES, "fields": COLUMN_NAMES}),
        "__doc__": "Export rows (`rows.Row`) → the contract's columns. Pass `iter_rows(...)` to export().",
    },
)
