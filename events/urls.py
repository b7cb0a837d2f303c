from django.urls import path

from . import views

app_name = "events"

urlpatterns = [
    path("", views.home, name="home"),
    path("events/", views.event_list, name="event_list"),
    path("events/<str:slug>/", views.event_detail, name="event_detail"),
    path("events/<str:slug>/performances/<int:pk>/", views.performance_detail, name="performance_detail"),
    path("events/<str:slug>/performances/<int:pk>/waiting/", views.waiting_room_page, name="waiting_room"),
]
