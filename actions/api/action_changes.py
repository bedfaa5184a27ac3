"""The answer of `POST .../actions/{id}/preview/`: what a change would do, before it is made."""

from django.utils.translation import gettext_lazy
from rest_framework import serializers


class JourneyUseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    live = serializers.BooleanField(
        help_text=gettext_lazy("A live or paused journey, whose runs call the action; false for drafts and stopped.")
    )


class ChangePreviewSerializer(serializers.Serializer):
    changes = serializers.DictField(
        child=serializers.DictField(),
        help_text=gettext_lazy(
            'By field, {"old": ..., "new": ...}; auth settings by path ("auth.username"). A secret '
            '("auth.password", "signing_secret", "client_key") only as {"changed": true}, never its value.'
        ),
    )
    journeys = JourneyUseSerializer(many=True, help_text=gettext_lazy("The journeys that use the action."))
