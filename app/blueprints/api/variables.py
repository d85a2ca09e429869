"""Variables (Prefect 2.20): ``/api/variables``, by id and by name."""

from flask.views import MethodView

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.schemas.filters import VariableCountBody, VariableFilterBody
from app.schemas.variables import (
    VariableCreateSchema,
    VariableSchema,
    VariableUpdateSchema,
    dump_variable,
)
from app.services import variables

blp = Blueprint(
    "variables",
    __name__,
    url_prefix="/api/variables",
    description="Named text values that flows read at run time.",
)


@blp.post("/")
@blp.arguments(VariableCreateSchema)
@blp.response(201, VariableSchema)
@blp.alt_response(409, description="A variable of this name exists.")
def create_variable(data):
    """Create a variable."""
    return json_response(dump_variable(variables.create_variable(data)), 201)


@blp.route("/<uuid:variable_id>")
class VariableById(MethodView):
    @blp.response(200, VariableSchema)
    def get(self, variable_id):
        """Read a variable by id."""
        return json_response(dump_variable(variables.read_variable(variable_id)))

    @blp.arguments(VariableUpdateSchema)
    @blp.response(204)
    def patch(self, changes, variable_id):
        """Change the fields sent (name, value, tags)."""
        variables.update_variable(variable_id, changes)
        return no_content()

    @blp.response(204)
    def delete(self, variable_id):
        """Delete a variable."""
        variables.delete_variable(variable_id)
        return no_content()


@blp.route("/name/<path:name>")
class VariableByName(MethodView):
    @blp.response(200, VariableSchema)
    def get(self, name):
        """Read a variable by name."""
        return json_response(dump_variable(variables.read_variable_by_name(name)))

    @blp.arguments(VariableUpdateSchema)
    @blp.response(204)
    def patch(self, changes, name):
        """Change the fields sent of the variable with this name."""
        variables.update_variable_by_name(name, changes)
        return no_content()

    @blp.response(204)
    def delete(self, name):
        """Delete the variable with this name."""
        variables.delete_variable_by_name(name)
        return no_content()


@blp.post("/filter")
@blp.arguments(VariableFilterBody)
@blp.response(200, VariableSchema(many=True))
def filter_variables(body):
    """List variables matching the filter, sorted (``NAME_ASC`` by default) and paged."""
    return json_response([dump_variable(v) for v in variables.read_variables(body)])


@blp.post("/count")
@blp.arguments(VariableCountBody)
@blp.response(200, description="The number of matching variables.")
def count_variables(body):
    """Count variables matching the filter."""
    return json_response(variables.count_variables(body))
