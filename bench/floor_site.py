"""The site plus one view that does nothing: what every hold pays before the engine.

Used by bench/request_floor.py only (DJANGO_SETTINGS_MODULE=bench.floor_settings).
"""

from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_POST


@require_POST
def signed_in_nothing(request):
    # The session, the signed-in user and the CSRF check, as a hold's; no engine.
    return JsonResponse({"signed_in": request.user.is_authenticated, "token": request.POST.get("token", "")})


urlpatterns = [path("bench/nothing/", signed_in_nothing), path("", include("ticketing.urls"))]
