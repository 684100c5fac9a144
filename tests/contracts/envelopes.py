"""JSON schemas of the five vendor envelopes, written from the vendors' published API
documents (one per document).
``additionalProperties: false`` where the document lists every field: an extra or missing field
is a broken contract."""

from __future__ import annotations

STRING = {"type": "string"}
INT = {"type": "integer"}


def closed(properties: dict, required: list[str] | None = None) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": required or list(properties),
        "additionalProperties": False,
    }


# JD Cloud Image Matting: the table's requestid and the example's requestId
JD_CUTOUT_OK = closed(
    {
        "code": {"const": "10000"},
        "msg": STRING,
        "result": closed(
            {
                "status": {"const": 0},
                "message": STRING,
                "requestid": STRING,
                "requestId": STRING,
                "cutout_image_url": {"type": "string", "pattern": "^https?://"},
            }
        ),
    }
)
JD_CUTOUT_ERROR = closed(
    {
        "code": {"const": "10000"},
        "msg": STRING,
        "result": closed(
            {
                "status": {"type": "integer", "minimum": 400},
                "message": STRING,
                "requestid": STRING,
                "requestId": STRING,
            }
        ),
    }
)

# JD NeuHub SelfieSeg
JD_SELFIE = closed(
    {
        "code": {"const": "10000"},
        "charge": {"type": "boolean"},
        "remain": {"type": ["integer", "null"]},
        "msg": STRING,
        "result": closed({"status": INT, "message": STRING, "image": STRING, "used_time": INT}),
    }
)

# PicWish-style tasks
PICWISH_TASK_DATA = {
    "type": "object",
    "properties": {
        "task_id": STRING,
        "state": {"enum": [1, 0, 2, 3, 4, -1, -2, -3, -5, -7, -8]},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "output_type": {"enum": [1, 2, 3]},
        "return_type": {"enum": [1, 2, 3]},
        "type": {"enum": ["auto", "person", "object", "stamp"]},
        "created_at": INT,
        "processed_at": {"type": ["integer", "null"]},
        "completed_at": {"type": ["integer", "null"]},
        "image": STRING,
        "mask": STRING,
    },
    "required": ["task_id", "state", "progress", "created_at"],
}
PICWISH_OK = {
    "type": "object",
    "properties": {"status": {"const": 200}, "message": {"const": "success"}, "data": PICWISH_TASK_DATA},
    "required": ["status", "message", "data"],
}
PICWISH_ERROR = closed({"status": {"type": "integer", "minimum": 400}, "message": STRING})

# Alibaba AIDGE
AIDGE_OK = closed(
    {
        "resCode": {"const": 200},
        "resMessage": STRING,
        "success": {"const": True},
        "requestId": STRING,
        "data": {
            "type": "object",
            "properties": {"imageUrl": {"type": "string", "pattern": "^https?://"}},
            "required": ["imageUrl"],
        },
    }
)
AIDGE_ERROR = closed(
    {
        "resCode": {"enum": [500, 501, 700, 801, 1000, 1001, 1002]},
        "resMessage": STRING,
        "success": {"const": False},
        "requestId": STRING,
        "data": {"type": "null"},
    }
)

# AILabTools-style costume
_DETAIL = closed({"status_code": INT, "code": STRING, "code_message": STRING, "message": STRING})
AILAB_OK = closed(
    {
        "request_id": STRING,
        "log_id": STRING,
        "error_code": {"const": 0},
        "error_msg": STRING,
        "error_detail": _DETAIL,
        "data": closed(
            {
                "elements": {
                    "type": "array",
                    "prefixItems": [
                        closed({"image_url": {"type": "string", "pattern": "^https?://"}}),
                        closed(
                            {
                                "class_url": {
                                    "type": "object",
                                    "additionalProperties": STRING,
                                    "propertyNames": {
                                        "enum": [
                                            "tops",
                                            "coat",
                                            "skirt",
                                            "pants",
                                            "bag",
                                            "shoes",
                                            "hat",
                                            "dress",
                                        ]
                                    },
                                }
                            }
                        ),
                    ],
                    "minItems": 2,
                    "maxItems": 2,
                }
            }
        ),
    }
)
AILAB_ERROR = closed(
    {
        "request_id": STRING,
        "log_id": STRING,
        "error_code": {"type": "integer", "minimum": 400},
        "error_msg": STRING,
        "error_detail": _DETAIL,
    }
)
