from django.urls import path

from . import views

app_name = "payments"

urlpatterns = [
    path("my/bookings/<str:code>/pay/", views.pay, name="pay"),
    path("my/bookings/<str:code>/cancel/", views.cancel, name="cancel"),
    path("my/bookings/<str:code>/refund-account/", views.refund_account, name="refund_account"),
    path("payments/complete/", views.complete, name="complete"),
    path("payments/return/", views.payment_return, name="return"),
    path("payments/webhook/", views.webhook, name="webhook"),
]
