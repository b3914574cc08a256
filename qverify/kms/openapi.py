"""The OpenAPI 3.0 description of the key-delivery API that :mod:`qverify.kms.server` serves.

ETSI GS QKD 014 V1.1.1 publishes no OpenAPI document (ETSI forge ``qkd/gs014-key-deliv``: "V1.1.1
did not include an OpenAPI description"), so this is the project's own, written from the standard's
Tables 2 to 13, with the project's rules: 503 with an Error body when a KME cannot serve, 401 with
an Error body (the standard gives 401 no body model), the array of the Key container named ``keys``
(Table 11 writes ``Keys``; its example and every other table write ``keys``), and
``max_SAE_ID_count = 0`` (no multicast). Served at ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from qverify.kms.kme import KmeLimits


def openapi_document(limits: KmeLimits | None = None, saes: list[str] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document, with ``limits`` in the request schemas' bounds and, if given, the
    network's SAE IDs as the values the path parameters take."""
    lim = limits or KmeLimits()
    obj = {"type": "object"}
    error = {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}, "details": {"type": "array", "items": obj}},
    }
    err_resp = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    errors = {
        "400": {"description": "Bad request format", **err_resp},
        "401": {"description": "Unauthorized", **err_resp},
        "503": {"description": "Error on server side (also: too little key)", **err_resp},
    }
    container = {
        "description": "Key container",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KeyContainer"}}},
    }

    def sae(name: str) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if saes:
            schema["enum"] = sorted(saes)
        return {"name": name, "in": "path", "required": True, "schema": schema}

    integer = {"type": "integer"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "qverify KMS: ETSI GS QKD 014 V1.1.1 key delivery", "version": "1.1.1"},
        "paths": {
            "/api/v1/keys/{slave_SAE_ID}/status": {
                "get": {
                    "operationId": "getStatus",
                    "parameters": [sae("slave_SAE_ID")],
                    "responses": {
                        "200": {
                            "description": "Status",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}},
                        },
                        **errors,
                    },
                }
            },
            "/api/v1/keys/{slave_SAE_ID}/enc_keys": {
                "get": {
                    "operationId": "getKeySimple",
                    "parameters": [
                        sae("slave_SAE_ID"),
                        {"name": "number", "in": "query", "required": False, "schema": integer},
                        {"name": "size", "in": "query", "required": False, "schema": integer},
                    ],
                    "responses": {"200": container, **errors},
                },
                "post": {
                    "operationId": "getKey",
                    "parameters": [sae("slave_SAE_ID")],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KeyRequest"}}},
                    },
                    "responses": {"200": container, **errors},
                },
            },
            "/api/v1/keys/{master_SAE_ID}/dec_keys": {
                "get": {
                    "operationId": "getKeyWithKeyIDsSimple",
                    "parameters": [
                        sae("master_SAE_ID"),
                        {"name": "key_ID", "in": "query", "required": True, "schema": {"type": "string"}},
                    ],
                    "responses": {"200": container, **errors},
                },
                "post": {
                    "operationId": "getKeyWithKeyIDs",
                    "parameters": [sae("master_SAE_ID")],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KeyIDs"}}},
                    },
                    "responses": {"200": container, **errors},
                },
            },
        },
        "components": {
            "schemas": {
                "Error": error,
                "Status": {
                    "type": "object",
                    "required": [
                        "source_KME_ID",
                        "target_KME_ID",
                        "master_SAE_ID",
                        "slave_SAE_ID",
                        "key_size",
                        "stored_key_count",
                        "max_key_count",
                        "max_key_per_request",
                        "max_key_size",
                        "min_key_size",
                        "max_SAE_ID_count",
                    ],
                    "properties": {
                        **{k: {"type": "string"} for k in ("source_KME_ID", "target_KME_ID", "master_SAE_ID")},
                        "slave_SAE_ID": {"type": "string"},
                        "key_size": {"type": "integer", "minimum": lim.min_key_size_bits},
                        "stored_key_count": {"type": "integer", "minimum": 0, "maximum": lim.max_key_count},
                        "max_key_count": {"type": "integer", "minimum": 1},
                        "max_key_per_request": {"type": "integer", "minimum": 1},
                        "max_key_size": {"type": "integer", "minimum": 8},
                        "min_key_size": {"type": "integer", "minimum": 8},
                        "max_SAE_ID_count": {"type": "integer", "minimum": 0, "maximum": 0},
                        "status_extension": obj,
                    },
                },
                "KeyRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "number": {"type": "integer", "minimum": 1, "maximum": lim.max_key_per_request},
                        "size": {
                            "type": "integer",
                            "minimum": lim.min_key_size_bits,
                            "maximum": lim.max_key_size_bits,
                            "multipleOf": 8,
                        },
                        "additional_slave_SAE_IDs": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
                        "extension_mandatory": {"type": "array", "items": obj},
                        "extension_optional": {"type": "array", "items": obj},
                    },
                },
                "KeyIDs": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["key_IDs"],
                    "properties": {
                        "key_IDs": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": lim.max_key_per_request,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["key_ID"],
                                "properties": {"key_ID": {"type": "string", "format": "uuid"}, "key_ID_extension": obj},
                            },
                        },
                        "key_IDs_extension": obj,
                    },
                },
                "KeyContainer": {
                    "type": "object",
                    "required": ["keys"],
                    "properties": {
                        "keys": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["key_ID", "key"],
                                "properties": {
                                    "key_ID": {"type": "string", "format": "uuid"},
                                    "key_ID_extension": obj,
                                    "key": {"type": "string", "format": "byte"},
                                    "key_extension": obj,
                                },
                            },
                        },
                        "key_container_extension": obj,
                    },
                },
            }
        },
    }
