from django.urls import path

from . import views

app_name = "reservations"

urlpatterns = [
    path("events/<str:slug>/performances/<int:pk>/hold/", views.hold, name="hold"),
    path("my/bookings/", views.booking_list, name="list"),
    path("my/bookings/<str:code>/", views.detail, name="detail"),
    path("my/bookings/<str:code>/release/", views.release, name="release"),
    path("my/bookings/<str:code>/discounts/", views.discounts, name="discounts"),
]
