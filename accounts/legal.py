"""The versions of the terms of service and the privacy policy now published.

Each sign-up records the versions it agreed to (User.terms_version and
privacy_version), so we can always tell which text a customer saw. When a page
(templates/accounts/terms.html, privacy.html) changes in substance, change its
version here, to the date it takes effect; the pages show it too.
"""

TERMS_VERSION = "2026-12-04"
PRIVACY_VERSION = "2026-12-04"
