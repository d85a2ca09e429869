"""Variable pages: the variables by name, with forms to create, edit and delete one. The rules
are the API's (its schemas check the form): a name of lowercase letters, numbers and
underscores, a value of at most 5,000 characters, a unique name."""

from flask import flash, redirect, request, url_for

from app.blueprints.ui import bp, params, render
from app.exceptions import ObjectAlreadyExists
from app.schemas.variables import VariableCreateSchema, VariableUpdateSchema
from app.services import variables

VARIABLES_SHOWN = 500


def _read_form(schema):
    """``(values, errors)`` of the submitted form through an API schema; ``errors`` maps a
    field to its message."""
    form = {
        "name": request.form.get("name", "").strip(),
        "value": request.form.get("value", ""),
        "tags": params.tags(request.form),
    }
    return params.load_form(schema, form)


def _page(status=200, form=None, errors=None):
    return render(
        "ui/variables.html",
        None,
        status=status,
        variables=variables.read_variables({"limit": VARIABLES_SHOWN, "offset": 0}),
        shown=VARIABLES_SHOWN,
        form=form or {},
        errors=errors or {},
    )


@bp.get("/variables")
def variables_page():
    """Every variable by name, with the form to create one."""
    return _page()


@bp.post("/variables")
def create_variable():
    """Create a variable from the form."""
    values, errors = _read_form(VariableCreateSchema())
    if not errors:
        try:
            variables.create_variable(values)
        except ObjectAlreadyExists as error:
            return _page(409, values, {"name": str(error)})
        flash(f"Created the variable {values['name']!r}.")
        return redirect(url_for("ui.variables_page"), 303)
    return _page(422, values, errors)


@bp.route("/variables/<uuid:variable_id>/edit", methods=["GET", "POST"])
def edit_variable(variable_id):
    """Change a variable's name, value or tags."""
    variable = variables.read_variable(variable_id)
    if request.method == "GET":
        form = {"name": variable.name, "value": variable.value, "tags": variable.tags}
        return render("ui/variable_form.html", None, variable=variable, form=form, errors={})
    values, errors = _read_form(VariableUpdateSchema())
    if not errors:
        try:
            variables.update_variable(variable_id, values)
        except ObjectAlreadyExists as error:
            errors = {"name": str(error)}
    if errors:
        status = 409 if "already exists" in errors.get("name", "") else 422
        return render(
            "ui/variable_form.html",
            None,
            status=status,
            variable=variable,
            form=values,
            errors=errors,
        )
    flash(f"Saved the variable {values['name']!r}.")
    return redirect(url_for("ui.variables_page"), 303)


@bp.post("/variables/<uuid:variable_id>/delete")
def delete_variable(variable_id):
    """Delete a variable."""
    variable = variables.read_variable(variable_id)
    variables.delete_variable(variable_id)
    flash(f"Deleted the variable {variable.name!r}.")
    return redirect(url_for("ui.variables_page"), 303)
