from django.core.serializers import pyyaml

from config.serialization import dump_reader

Serializer = pyyaml.Serializer
Deserializer = dump_reader(pyyaml.Deserializer)
