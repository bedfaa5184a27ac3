from django.core.serializers import python

from config.serialization import dump_reader

Serializer = python.Serializer
Deserializer = dump_reader(python.Deserializer)
