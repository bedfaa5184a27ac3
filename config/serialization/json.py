from django.core.serializers import json

from config.serialization import dump_reader

Serializer = json.Serializer
Deserializer = dump_reader(json.Deserializer)
