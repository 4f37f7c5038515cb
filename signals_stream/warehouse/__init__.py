"""Warehouses the sync engine reads (#16): URLs, SQL for every dialect, and adapters."""

from signals_stream.warehouse.adapters import ChangedRow, Warehouse, WarehouseError, open_warehouse
from signals_stream.warehouse.sql import TableRef, Watermark
from signals_stream.warehouse.urls import WarehouseUrl, parse_warehouse_url, redact_url

__all__ = [
    "ChangedRow",
    "TableRef",
    "Warehouse",
    "WarehouseError",
    "WarehouseUrl",
    "Watermark",
    "open_warehouse",
    "parse_warehouse_url",
    "redact_url",
]
