from django.urls import path

from . import views

app_name = "accounts"

# Mounted at /my/ beside reservations' /my/bookings/.
urlpatterns = [
    path("", views.my_page, name="my_page"),
    path("profile/", views.profile_edit, name="profile_edit"),
    path("delete/", views.account_delete, name="delete"),
]
