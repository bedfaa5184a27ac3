from django.core.serializers import xml_serializer

from config.serialization import dump_reader

Serializer = xml_serializer.Serializer
Deserializer = dump_reader(xml_serializer.Deserializer)
