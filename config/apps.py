from django.contrib.admin.apps import AdminConfig


class ConduitAdminConfig(AdminConfig):
    default_site = "config.admin_site.ConduitAdminSite"
