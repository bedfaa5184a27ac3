from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from config.encryption import encrypted_fields


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS. "
        "Put the new key first, keep the old ones after it, run this, then remove the old keys."
    )

    def handle(self, **options) -> None:
        total = 0
        for model in apps.get_models():
            fields = encrypted_fields(model)
            if not fields or model._meta.proxy:
                continue
            count = 0
            for pk in model._default_manager.values_list("pk", flat=True).iterator():
                with transaction.atomic():
                    # Reading decrypts with any key; saving encrypts with the first one.
                    row = model._default_manager.select_for_update().get(pk=pk)
                    row.save(update_fields=fields)
                count += 1
            total += count
            self.stdout.write(f"{model._meta.label}: {count} row(s) re-encrypted ({', '.join(fields)}).")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} row(s) now use the first key."))
