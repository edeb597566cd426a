"""WTForms forms of the pages: they parse and validate what a browser posts.

They carry the per-field errors shown next to each field. (CSRF is checked once, by the
page blueprints.)
"""
from __future__ import annotations

import json

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError

from automation.knowledge.decision import DEFAULT_LEVEL, LEVELS


class PageForm(FlaskForm):
    """Base form: CSRF is already enforced for the whole request by the blueprint."""

    class Meta:
        """WTForms options."""

        csrf = False


class LoginForm(PageForm):
    """The sign-in form (the API login's fields)."""

    email = EmailField("E-mail", validators=[DataRequired(), Email(check_deliverability=False),
                                             Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class ReplyForm(PageForm):
    """An agent's reply: text, or a WhatsApp template outside the window."""

    text = TextAreaField("Reply", validators=[Length(max=4096)])
    template_name = StringField("WhatsApp template name", validators=[Optional(), Length(max=512)])
    template_language = StringField("Template language", default="en_US",
                                    validators=[Optional(), Length(min=2, max=16)])

    def validate_text(self, field):
        """A text, unless a template is sent."""
        if not (field.data or "").strip() and not (self.template_name.data or "").strip():
            raise ValidationError("Write a reply (or choose a template outside the window).")

    def validate_template_name(self, field):
        """WhatsApp template names: lower-case letters, digits and underscores."""
        name = (field.data or "").strip()
        if name and not all(c.islower() or c.isdigit() or c == "_" for c in name):
            raise ValidationError("Template names are lower-case letters, digits and _.")


class KnowledgeForm(PageForm):
    """A knowledge-base document typed into the page."""

    title = StringField("Title", validators=[DataRequired(), Length(max=300)])
    content = TextAreaField("Content", validators=[DataRequired(), Length(max=200_000)])
    format = SelectField("Format", choices=[SelectChoice("text", "Text"),
                                            SelectChoice("markdown", "Markdown"),
                                            SelectChoice("faq", "FAQ")], default="text")


class AnswerConfidenceForm(PageForm):
    """How bold the offline AI is: the business profile's answer_confidence."""

    answer_confidence = SelectField(
        "How bold the AI answers",
        choices=[SelectChoice(level, f"{level.capitalize()}: a wrong answer weighs as much as "
                                     f"{cost:g} hand-offs"
                                     + (" (default)" if level == DEFAULT_LEVEL else ""))
                 for level, cost in LEVELS.items()],
        default=DEFAULT_LEVEL)


class WorkflowForm(PageForm):
    """A workflow definition edited as JSON."""

    definition = TextAreaField("Workflow (JSON)", validators=[DataRequired()])

    def validate_definition(self, field):
        """JSON, and an object (its shape is checked by the API's model afterwards)."""
        try:
            value = json.loads(field.data)
        except ValueError as exc:
            raise ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ValidationError("The workflow must be a JSON object.")
        field.parsed = value


class PlatformForm(PageForm):
    """Connect a Page, Instagram account or WhatsApp number."""

    platform = SelectField("Platform", choices=[
        SelectChoice("facebook", "Facebook Page"), SelectChoice("instagram", "Instagram account"),
        SelectChoice("whatsapp", "WhatsApp number")])
    external_id = StringField("Page / account / phone number id",
                              validators=[DataRequired(), Length(max=128)])
    access_token = PasswordField("Access token", validators=[DataRequired(), Length(max=4096)])
    name = StringField("Name", validators=[Optional(), Length(max=200)])


class AdminUserForm(PageForm):
    """An administrator's change to a user: role, active."""

    role = SelectField("Role", choices=[SelectChoice("user"), SelectChoice("admin")])
    is_active = BooleanField("Active")


class GrantForm(PageForm):
    """An administrator puts a user on a plan."""

    user_id = StringField("User id", validators=[DataRequired(), Length(max=36)])
    tier_id = SelectField("Plan", validators=[DataRequired()], choices=[])
