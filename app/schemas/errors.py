"""The error body every API error response has (ORION-REFERENCE.md §4)."""

from marshmallow import fields

from app.schemas.base import OrionSchema


class ValidationDetailSchema(OrionSchema):
    loc = fields.List(fields.Raw(), metadata={"description": "Where: body/query/path, then keys."})
    msg = fields.String()
    type = fields.String()


class ErrorSchema(OrionSchema):
    """404/409/400/401/503 carry ``detail``; 422 the validation fields; 500 the message only."""

    detail = fields.String(metadata={"description": "What went wrong (non-validation errors)."})
    exception_message = fields.String()
    exception_detail = fields.List(fields.Nested(ValidationDetailSchema))
    request_body = fields.Raw(allow_none=True)
