"""Notification pages: the flow run notification policies (when a run with some tags enters
some states, send a message through a block), with forms to create and edit one, and buttons
to pause, resume and delete it. The rules are the API's (``notification_policies``): the block
must be one this server sends through, and the template may use only the listed variables.
"""

import uuid

from flask import current_app, flash, redirect, request, url_for

from app.blueprints.ui import BadParameter, bp, params, render
from app.exceptions import InvalidData
from app.services import blocks, notification_policies, notifications

POLICIES_SHOWN = 200
BLOCKS_SHOWN = 500
TEMPLATE_LENGTH = 5000
# The state names a policy can list: every name a flow run's state takes (Prefect 2.7's UI
# offers the same).
STATE_NAMES = (
    "Scheduled",
    "Late",
    "AwaitingRetry",
    "Pending",
    "Running",
    "Retrying",
    "Paused",
    "Completed",
    "Cached",
    "Cancelling",
    "Cancelled",
    "Failed",
    "TimedOut",
    "Crashed",
)


def _sending_blocks():
    """The saved blocks a policy can send through, by name."""
    return blocks.read_block_documents(
        {
            "block_types": {"slug": {"any_": list(notification_policies.SENDABLE_BLOCK_TYPES)}},
            "limit": BLOCKS_SHOWN,
            "offset": 0,
        }
    )


@bp.get("/notifications")
def notifications_page():
    """Every notification policy with the block it sends through."""
    policies = notification_policies.read_policies({"limit": POLICIES_SHOWN, "offset": 0})
    documents = {
        d.document.id: d
        for d in blocks.read_block_documents(
            {
                "block_documents": {
                    "id": {"any_": list({p.block_document_id for p in policies})},
                    "is_anonymous": {"eq_": None},
                },
                "limit": POLICIES_SHOWN,
                "offset": 0,
            }
        )
    }
    return render(
        "ui/notifications.html",
        None,
        policies=policies,
        documents=documents,
        shown=POLICIES_SHOWN,
    )


def _read_form(form):
    """``(values, errors)`` of a submitted policy form; ``errors`` maps field -> message."""
    errors = {}
    states = form.getlist("state_names")
    unknown = [name for name in states if name not in STATE_NAMES]
    if unknown:
        errors["state_names"] = f"Unknown state name {unknown[0]!r}."
    tags = params.tags(form)
    block_id = form.get("block_document_id", "")
    try:
        block_id = str(uuid.UUID(block_id))
    except ValueError:
        errors["block_document_id"] = "Choose the block to send through."
    template = params.text(form, "message_template", TEMPLATE_LENGTH).strip() or None
    values = {
        "state_names": states,
        "tags": tags,
        "block_document_id": block_id,
        "message_template": template,
        "is_active": form.get("is_active") == "on",
    }
    return values, errors


def _form_page(policy, values, errors, status=200):
    return render(
        "ui/notification_form.html",
        None,
        status=status,
        policy=policy,
        values=values,
        errors=errors,
        state_names=STATE_NAMES,
        documents=_sending_blocks(),
        sendable=notification_policies.SENDABLE_BLOCK_TYPES,
        variables=notification_policies.TEMPLATE_VARIABLES,
        default_template=notification_policies.DEFAULT_MESSAGE_TEMPLATE.strip(),
    )


def _save(policy, save):
    """Read the form and ``save(values)``; the form again, with what was wrong, on a refusal."""
    values, errors = _read_form(request.form)
    if not errors:
        try:
            save(values)
        except InvalidData as error:
            field = error.loc[-1] if error.loc else "form"
            errors[field if field in values else "form"] = str(error)
    if errors:
        return _form_page(policy, values, errors, 422)
    return None


@bp.route("/notifications/new", methods=["GET", "POST"])
def new_notification():
    """Create a notification policy."""
    if request.method == "GET":
        return _form_page(None, {"is_active": True, "state_names": [], "tags": []}, {})
    refused = _save(None, notification_policies.create_policy)
    if refused is not None:
        return refused
    flash("Created the notification.")
    return redirect(url_for("ui.notifications_page"), 303)


@bp.route("/notifications/<uuid:policy_id>/edit", methods=["GET", "POST"])
def edit_notification(policy_id):
    """Change a notification policy."""
    policy = notification_policies.read_policy(policy_id)
    if request.method == "GET":
        values = {
            "state_names": policy.state_names,
            "tags": policy.tags,
            "block_document_id": str(policy.block_document_id),
            "message_template": policy.message_template,
            "is_active": policy.is_active,
        }
        return _form_page(policy, values, {})
    refused = _save(policy, lambda values: notification_policies.update_policy(policy_id, values))
    if refused is not None:
        return refused
    flash("Saved the notification.")
    return redirect(url_for("ui.notifications_page"), 303)


@bp.post("/notifications/<uuid:policy_id>/active")
def set_notification_active(policy_id):
    """Pause (``active=false``) or resume (``active=true``) a notification policy."""
    active = params.one_of(request.form, "active", ["true", "false"], None)
    if active is None:
        raise BadParameter("active", "say true or false.")
    notification_policies.update_policy(policy_id, {"is_active": active == "true"})
    flash("Resumed the notification." if active == "true" else "Paused the notification.")
    return redirect(url_for("ui.notifications_page"), 303)


@bp.post("/notifications/<uuid:policy_id>/test")
def test_notification(policy_id):
    """Send a test message through the policy's block now; the page then says whether the
    receiver took it (and if not, why)."""
    settings = notifications.NotificationSettings.from_config(current_app.config)
    try:
        where = notifications.send_test(policy_id, settings)
    except notifications.SendError as error:
        flash(f"The test notification was not sent: {error}")
    else:
        flash(f"Sent a test notification through the {where}.")
    return redirect(url_for("ui.notifications_page"), 303)


@bp.post("/notifications/<uuid:policy_id>/delete")
def delete_notification(policy_id):
    """Delete a notification policy."""
    notification_policies.delete_policy(policy_id)
    flash("Deleted the notification.")
    return redirect(url_for("ui.notifications_page"), 303)
