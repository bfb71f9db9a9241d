"""The OpenAPI 3.1 description of `/api/v1/`, served at `/api/v1/schema/` (and `/api/v1/openapi.json`)."""

from __future__ import annotations

from measurements.exports.columns import COLUMNS
from measurements.models import ExportJob

_JSON_TYPES = {"decimal": "number", "integer": "integer", "boolean": "boolean"}


def _column_schema(column) -> dict:
    kind = _JSON_TYPES.get(column.type, "string")
    schema: dict = {"type": [kind, "null"], "description": column.meaning}
    if column.name == "withings_grpid":  # a keyed hash (text) in de-identified responses
        schema["type"] = ["integer", "string", "null"]
    return schema


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _param(name: str, description: str, schema: dict | None = None, where: str = "query") -> dict:
    return {"name": name, "in": where, "required": where == "path", "description": description,
            "schema": schema or {"type": "string"}}  # fmt: skip


SLUG = _param("slug", "Study slug", where="path")
EXPORT_ID = _param("uuid", "Export job id", {"type": "string", "format": "uuid"}, where="path")
COMMON_ERRORS = {
    "401": _error("No token, or an expired or revoked one"),
    "404": _error("Not found, or not yours to see"),
    "429": _error("Rate limit: see Retry-After"),
}


def openapi_document(*, server: str) -> dict:
    reading = {
        "type": "object",
        "properties": {c.name: _column_schema(c) for c in COLUMNS},
        "required": [c.name for c in COLUMNS],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cohort portal API for analysts",
            "version": "1",
            "description": "Token-authenticated (Authorization: Bearer cpat_…; tokens are created in the "
            "admin under 'API access tokens'). Every call is audited and rate-limited per token. Data follow "
            "the export columns and their data dictionary; a de-identified response (X-Deidentified: true) "
            "has shifted dates, hashed Withings group ids and no device model.",
        },
        "servers": [{"url": server}],
        "security": [{"bearer": []}],
        "paths": {
            "/studies/": {
                "get": {
                    "operationId": "listStudies",
                    "summary": "The studies whose readings this token may pull",
                    "responses": {
                        "200": {
                            "description": "Studies",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "results": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Study"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        **COMMON_ERRORS,
                    },
                }
            },
            "/studies/{slug}/readings/": {
                "get": {
                    "operationId": "listReadings",
                    "summary": "One page of readings, oldest first (keyset on measured_at, id)",
                    "parameters": [
                        SLUG,
                        _param(
                            "since",
                            "From this UTC day (YYYY-MM-DD) or instant (ISO 8601 with offset), "
                            "inclusive. Not with de-identified data.",
                        ),
                        _param(
                            "until",
                            "Up to this UTC day, inclusive, or before this instant. Not with "
                            "de-identified data.",
                        ),
                        _param("site", "Site code"),
                        _param("cursor", "The next page's cursor, from `next` or the Link header"),
                        _param(
                            "limit",
                            "Readings per page (default 1000)",
                            {"type": "integer", "minimum": 1, "maximum": 10000},
                        ),
                        _param(
                            "format",
                            "csv or json (else the Accept header; default json)",
                            {"type": "string", "enum": ["csv", "json"]},
                        ),
                        _param(
                            "deidentified",
                            "true: de-identified even where the role allows full data",
                            {"type": "boolean"},
                        ),
                    ],
                    "responses": {
                        "200": {
                            "description": "A page; `next` (and the Link header) is null on the last one",
                            "headers": {
                                "Link": {"schema": {"type": "string"}, "description": '<url>; rel="next"'},
                                "X-Deidentified": {"schema": {"type": "string", "enum": ["true", "false"]}},
                            },
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["study", "deidentified", "results", "next"],
                                        "properties": {
                                            "study": {"type": "string"},
                                            "deidentified": {"type": "boolean"},
                                            "results": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Reading"},
                                            },
                                            "next": {"type": ["string", "null"], "format": "uri"},
                                        },
                                    }
                                },
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        "400": _error("Bad parameters or cursor"),
                        **COMMON_ERRORS,
                    },
                }
            },
            "/studies/{slug}/exports/": {
                "post": {
                    "operationId": "startExport",
                    "summary": "Kick off an export package (FHIR Bulk Data style)",
                    "parameters": [SLUG],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ExportRequest"}}
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted; poll the Content-Location URL",
                            "headers": {"Content-Location": {"schema": {"type": "string", "format": "uri"}}},
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "id": {"type": "string"},
                                            "status_url": {"type": "string"},
                                        },
                                    }
                                }
                            },
                        },
                        "400": _error("Bad request"),
                        "403": _error("Full data asked by a de-identified-only token or role"),
                        **COMMON_ERRORS,
                    },
                }
            },
            "/exports/{uuid}/": {
                "get": {
                    "operationId": "exportStatus",
                    "summary": "Poll an export: 202 while running, 200 with the file URL when done",
                    "parameters": [EXPORT_ID],
                    "responses": {
                        "200": {
                            "description": "Done",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/ExportDone"}}
                            },
                        },
                        "202": {
                            "description": "Running; poll again after Retry-After seconds",
                            "headers": {
                                "X-Progress": {"schema": {"type": "string"}},
                                "Retry-After": {"schema": {"type": "integer"}},
                            },
                        },
                        "500": _error("The export failed"),
                        **COMMON_ERRORS,
                    },
                }
            },
            "/exports/{uuid}/file/": {
                "get": {
                    "operationId": "exportFile",
                    "summary": "Download the package (zip: data file, data dictionary, manifest, SHA256SUMS)",
                    "parameters": [EXPORT_ID],
                    "responses": {
                        "200": {
                            "description": "The zip",
                            "content": {
                                "application/zip": {"schema": {"type": "string", "format": "binary"}}
                            },
                        },
                        "400": _error("Not ready"),
                        **COMMON_ERRORS,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "status"],
                    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
                },
                "Study": {
                    "type": "object",
                    "properties": {
                        "slug": {"type": "string"},
                        "name": {"type": "string"},
                        "status": {"type": "string"},
                        "sites": {"type": "array", "items": {"type": "string"}},
                        "site_restriction": {"type": ["string", "null"]},
                        "export_rights": {"type": "string", "enum": ["full", "deidentified"]},
                        "readings_url": {"type": "string", "format": "uri"},
                        "exports_url": {"type": "string", "format": "uri"},
                    },
                },
                "Reading": reading,
                "ExportRequest": {
                    "type": "object",
                    "required": ["format"],
                    "additionalProperties": False,
                    "properties": {
                        "format": {"type": "string", "enum": list(ExportJob.Format.values)},
                        "since": {"type": "string", "format": "date"},
                        "until": {"type": "string", "format": "date"},
                        "sites": {"type": "array", "items": {"type": "string"}},
                        "statuses": {"type": "array", "items": {"type": "string"}},
                        "deidentified": {"type": "boolean"},
                    },
                },
                "ExportDone": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string"},
                        "transactionTime": {"type": "string", "format": "date-time"},
                        "request": {"type": "string"},
                        "requiresAccessToken": {"type": "boolean"},
                        "deidentified": {"type": "boolean"},
                        "output": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "type": {"type": "string"},
                                    "format": {"type": "string"},
                                    "url": {"type": "string", "format": "uri"},
                                    "count": {"type": "integer"},
                                    "bytes": {"type": ["integer", "null"]},
                                    "sha256": {"type": "string"},
                                },
                            },
                        },
                        "error": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    }
