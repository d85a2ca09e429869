// Starts Swagger UI on /docs (app/templates/swagger_ui.html) from the container's data
// attributes: the spec's URL and the OPENAPI_SWAGGER_UI_CONFIG overrides (JSON). A file of its
// own so the page needs no inline script under the Content-Security-Policy.
(function () {
  "use strict";
  var container = document.getElementById("swagger-ui-container");
  var config = { url: container.getAttribute("data-spec-url"), dom_id: "#swagger-ui-container" };
  var overrides = JSON.parse(container.getAttribute("data-config") || "{}");
  Object.keys(overrides).forEach(function (name) { config[name] = overrides[name]; });
  window.ui = SwaggerUIBundle(config);
})();
