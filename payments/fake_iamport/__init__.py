"""A local fake of I'mport (PortOne V1): REST API, browser SDK shim, webhooks, controls.

Speaks the real wire protocol (specs/iamport-v1.md §2), so the real iamport-rest-client
is exercised over HTTP in development and tests. Standard library only: no Django.

    python -m payments.fake_iamport --port 8765      # standalone (make run starts it)
    FakeIamport(port=0).start()                      # in tests (see payments/testing.py)
"""

from .server import FakeIamport
from .store import ApiError, CheckoutSession, ControlError, IamportStore
from .webhooks import WebhookConfig

__all__ = ["ApiError", "CheckoutSession", "ControlError", "FakeIamport", "IamportStore", "WebhookConfig"]
