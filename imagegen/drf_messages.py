"""Django REST framework messages its own zh-Hant catalogue lacks, listed so ours translates them.

Nothing imports this module: `manage.py update_catalogs` extracts these strings into the root
catalogue, which takes precedence over the installed apps' catalogues, so API errors read in one
language instead of a mix of Chinese and English.
"""

from django.utils.translation import gettext_noop

MESSAGES = [
    gettext_noop("Authentication credentials were not provided."),
    gettext_noop("Incorrect authentication credentials."),
    gettext_noop("A server error occurred."),
    gettext_noop("Could not satisfy the request Accept header."),
    gettext_noop('Unsupported media type "{media_type}" in request.'),
    gettext_noop("Malformed request."),
    gettext_noop("Invalid input."),
    gettext_noop("Request was throttled."),
    gettext_noop("Expected available in {wait} second."),
    gettext_noop("Expected available in {wait} seconds."),
    gettext_noop("Must be a valid UUID."),
    gettext_noop("Must be a valid boolean."),
    gettext_noop("Not a valid string."),
    gettext_noop("Ensure this field has at least {min_length} elements."),
    gettext_noop("Ensure this field has no more than {max_length} elements."),
    gettext_noop('Expected a dictionary of items but got type "{input_type}".'),
    gettext_noop("This dictionary may not be empty."),
    gettext_noop("Datetime has wrong format. Use one of these formats instead: {format}."),
    gettext_noop("A page number within the paginated result set."),
    gettext_noop("Number of results to return per page."),
]
