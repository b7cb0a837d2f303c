from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import PhoneNumberField
from accounts.models import NAME_MAX_LENGTH

from .models import Payment


class PayForm(forms.Form):
    """Checkout's last step: who is booking (예매자 정보) and how they pay."""

    booker_name = forms.CharField(
        label=_("Booker's name"),
        max_length=NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        error_messages={"required": _("Enter the name of the person booking.")},
    )
    booker_phone = PhoneNumberField(
        label=_("Mobile phone"),
        required=True,
        help_text=_("We call or text this number only about this booking (a changed or cancelled performance)."),
        error_messages={"required": _("Enter a phone number we can reach you on about this booking.")},
    )
    method = forms.ChoiceField(label=_("Payment method"), choices=Payment.Method.choices, widget=forms.RadioSelect)
    agree = forms.BooleanField(
        label=_("I have read the cancellation and refund policy and agree to it."),
        error_messages={"required": _("Please agree to the refund policy to continue.")},
    )
    # The total the page showed on its pay button: a tab left open while the ticket
    # types were changed in another must not open the payment window at another amount.
    shown_total = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    @classmethod
    def initial_for(cls, reservation, user) -> dict:
        """Filled in from the booking (paying again) or else the customer's profile."""
        return {
            "method": Payment.Method.CARD,
            "booker_name": reservation.booker_name or user.name,
            "booker_phone": reservation.booker_phone or user.phone,
        }


BANKS = [
    ("", _("Choose a bank")),
    ("004", "KB국민은행"),
    ("088", "신한은행"),
    ("020", "우리은행"),
    ("081", "하나은행"),
    ("011", "NH농협은행"),
    ("003", "IBK기업은행"),
    ("090", "카카오뱅크"),
    ("092", "토스뱅크"),
]


class RefundAccountForm(forms.Form):
    """The bank account a virtual-account payment is refunded to."""

    refund_bank = forms.ChoiceField(label=_("Bank"), choices=BANKS)
    refund_account = forms.RegexField(
        label=_("Account number"),
        regex=r"^[0-9-]{6,20}$",
        error_messages={"invalid": _("Enter the account number with digits and dashes only.")},
    )
    refund_holder = forms.CharField(label=_("Account holder"), max_length=40)


class CancelForm(RefundAccountForm):
    """Confirming a cancellation; virtual-account payments also name a refund account."""

    token = forms.CharField(widget=forms.HiddenInput)
    field_order = ["token", "refund_bank", "refund_account", "refund_holder"]

    def __init__(self, *args, needs_account: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.needs_account = needs_account
        for name in ("refund_bank", "refund_account", "refund_holder"):
            self.fields[name].required = needs_account


class StaffRefundForm(RefundAccountForm):
    """Staff refund. `token` makes a double click one refund (payments.services.payment_refund);
    the bank account, checked as the customer's is, is asked for only for a virtual-account
    payment."""

    token = forms.CharField(widget=forms.HiddenInput)
    amount = forms.IntegerField(label=_("Amount to refund (KRW)"), min_value=1)
    reason = forms.CharField(label=_("Reason"), max_length=200)
    cancel_booking = forms.BooleanField(
        label=_("Also cancel the booking and put its seats back on sale"), required=False
    )
    field_order = ["token", "amount", "reason", "refund_bank", "refund_account", "refund_holder", "cancel_booking"]

    def __init__(self, *args, payment: Payment, **kwargs):
        super().__init__(*args, **kwargs)
        if payment.method != Payment.Method.VBANK:
            for name in ("refund_bank", "refund_account", "refund_holder"):
                del self.fields[name]
