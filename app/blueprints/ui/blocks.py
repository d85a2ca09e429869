"""Block pages: the saved blocks (filterable by type), the catalog of block types, a block's
page (its fields, secrets obfuscated, and the deployments that use it), and forms to create,
edit and delete blocks.

The forms are generated from the block type's newest schema by the same field builder as the
custom run form (``parameter_form``). A secret field shows ``**********`` for a value already
saved: sent back unchanged, the secret keeps its value (the service's rule). A field that is
another block is a choice among the saved blocks of that type. Data is checked by the service
against the schema, the same check as ``POST /api/block_documents/``; a refusal is shown
next to the field it names.
"""

import re

from flask import flash, redirect, request, url_for

from app.blueprints.ui import BadParameter, bp, page_url, params, render
from app.blueprints.ui.parameter_form import form_fields, read_parameters
from app.exceptions import Conflict, InvalidData, ObjectAlreadyExists
from app.services import blocks

BLOCKS_PER_PAGE = 100
MAX_PAGE = 1000
BLOCK_TYPES_SHOWN = 500
CHOICES_SHOWN = 500
USERS_SHOWN = 20
NAME_RULE = re.compile(r"^[a-z0-9-]+$")


def _block_types():
    return blocks.read_block_types({"limit": BLOCK_TYPES_SHOWN, "offset": 0})


def _summary(description):
    """The first paragraph of a block type's description (the catalog's one line)."""
    return (description or "").strip().split("\n\n")[0]


@bp.get("/blocks")
def blocks_page():
    """Saved blocks by name, optionally of one block type (``type``: its slug), paged."""
    types = _block_types()
    slug = params.one_of(request.args, "type", [t.slug for t in types] + [""], "")
    page = params.integer(request.args, "page", 1, 1, MAX_PAGE)
    body = {"limit": BLOCKS_PER_PAGE + 1, "offset": (page - 1) * BLOCKS_PER_PAGE}
    if slug:
        body["block_types"] = {"slug": {"any_": [slug]}}
    documents = blocks.read_block_documents(body)
    return render(
        "ui/blocks.html",
        None,
        documents=documents[:BLOCKS_PER_PAGE],
        prev_url=page_url(page - 1) if page > 1 else None,
        next_url=page_url(page + 1)
        if len(documents) > BLOCKS_PER_PAGE and page < MAX_PAGE
        else None,
        types=types,
        slug=slug,
    )


@bp.get("/blocks/catalog")
def block_catalog_page():
    """Every block type with its description and capabilities, each with a Create link."""
    types = _block_types()
    return render(
        "ui/block_catalog.html",
        None,
        types=types,
        schemas=blocks.latest_block_schemas([t.id for t in types]),
        summary=_summary,
    )


def _fields(schema, values):
    """The form's fields for a block schema, prefilled with ``values``; block fields list
    the saved blocks of their type."""
    fields = form_fields(schema.fields, values)
    required = set((schema.fields or {}).get("required") or ())
    for field_ in fields:
        field_.required = field_.name in required
        if field_.kind == "block":
            field_.choices = [
                (str(d.document.id), d.document.name)
                for d in blocks.read_block_documents(
                    {
                        "block_types": {"slug": {"any_": [field_.block_type]}},
                        "limit": CHOICES_SHOWN,
                        "offset": 0,
                    }
                )
            ]
    return fields


def _form_page(template, status=200, **context):
    return render(template, None, status=status, **context)


def _show_refusal(error, fields):
    """Put the service's refusal next to the field it names; the message if none."""
    loc = list(getattr(error, "loc", None) or ())
    named = str(loc[2]) if len(loc) > 2 and loc[:2] == ["body", "data"] else None
    for field_ in fields:
        if field_.name == named:
            field_.error = str(error)
            return None
    return str(error)


@bp.route("/blocks/new/<slug>", methods=["GET", "POST"])
def new_block(slug):
    """Create a block of the type ``slug`` (its newest schema) from the generated form."""
    block_type = blocks.read_block_type_by_slug(slug)
    schema = blocks.latest_block_schema(block_type.id)
    fields = _fields(schema, {})
    context = {"block_type": block_type, "fields": fields, "name": "", "error": None}
    if request.method == "GET":
        return _form_page("ui/block_form.html", **context)
    name = context["name"] = params.text(request.form, "name", 255)
    data, has_errors = read_parameters(fields, request.form)
    name_error = _name_error(name)
    if name_error or has_errors:
        return _form_page("ui/block_form.html", 422, name_error=name_error, **context)
    try:
        created = blocks.create_block_document(
            {
                "name": name,
                "data": data,
                "block_schema_id": schema.id,
                "block_type_id": block_type.id,
                "is_anonymous": False,
            }
        )
    except ObjectAlreadyExists:
        return _form_page(
            "ui/block_form.html",
            409,
            name_error=f"A {block_type.name} block named {name!r} already exists.",
            **context,
        )
    except InvalidData as error:
        context["error"] = _show_refusal(error, fields)
        return _form_page("ui/block_form.html", 422, **context)
    flash(f"Created the {block_type.name} block {name!r}.")
    return redirect(url_for("ui.block_page", document_id=created.document.id), 303)


def _name_error(name):
    if not name:
        return "A name is required."
    if not NAME_RULE.match(name):
        return "Use only lowercase letters, numbers and dashes."
    return None


def _form_values(resolved):
    """A saved document's data as form values: nested blocks by their document id."""
    values = dict(resolved.data)
    for name, reference in resolved.references.items():
        values[name] = str(reference.document.id)
    return values


@bp.get("/blocks/<uuid:document_id>")
def block_page(document_id):
    """A block: its type, its fields (secrets obfuscated, nested blocks linked) and the
    deployments that use it."""
    resolved = blocks.read_block_document(document_id)
    return _block_page(resolved)


def _block_page(resolved, status=200, error=None):
    return render(
        "ui/block.html",
        None,
        status=status,
        resolved=resolved,
        document=resolved.document,
        block_type=resolved.block_type,
        users=blocks.deployments_using([resolved.document.id], USERS_SHOWN),
        shown=USERS_SHOWN,
        error=error,
    )


@bp.route("/blocks/<uuid:document_id>/edit", methods=["GET", "POST"])
def edit_block(document_id):
    """Change a saved block's data through the form of its schema (its name stays)."""
    resolved = blocks.read_block_document(document_id)
    if resolved.document.is_anonymous:
        raise BadParameter("document_id", "anonymous blocks belong to the objects using them.")
    fields = _fields(resolved.block_schema, _form_values(resolved))
    context = {"resolved": resolved, "block_type": resolved.block_type, "fields": fields}
    if request.method == "GET":
        return _form_page("ui/block_form.html", error=None, **context)
    data, has_errors = read_parameters(fields, request.form)
    if has_errors:
        return _form_page("ui/block_form.html", 422, error=None, **context)
    try:
        blocks.update_block_document(document_id, {"data": data, "merge_existing_data": False})
    except InvalidData as error:
        return _form_page("ui/block_form.html", 422, error=_show_refusal(error, fields), **context)
    flash(f"Saved the {resolved.block_type.name} block {resolved.document.name!r}.")
    return redirect(url_for("ui.block_page", document_id=document_id), 303)


@bp.post("/blocks/<uuid:document_id>/delete")
def delete_block(document_id):
    """Delete a block, unless a deployment uses it (the page then says which, with 409)."""
    resolved = blocks.read_block_document(document_id)
    try:
        blocks.delete_block_document(document_id)
    except Conflict as error:
        return _block_page(resolved, 409, str(error))
    flash(f"Deleted the {resolved.block_type.name} block {resolved.document.name!r}.")
    return redirect(url_for("ui.blocks_page"), 303)
