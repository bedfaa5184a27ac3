from django.core.serializers import jsonl

from config.serialization import dump_reader

Serializer = jsonl.Serializer
Deserializer = dump_reader(jsonl.Deserializer)
