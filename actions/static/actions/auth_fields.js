// Shows only the fields of the chosen auth type. Without JavaScript every field stays visible,
// each labelled with the auth type it belongs to.
"use strict";
(function () {
    const PREFIXES = {
        basic: "basic_",
        bearer: "bearer_",
        api_key: "api_key_",
        oauth2_client_credentials: "oauth2_",
        token_endpoint: "token_",
    };

    function fieldNames(row) {
        return Array.from(row.classList)
            .filter(function (name) { return name.startsWith("field-"); })
            .map(function (name) { return name.slice("field-".length); });
    }

    function update(select) {
        const fieldset = select.closest("fieldset");
        if (!fieldset) {
            return;
        }
        const prefix = PREFIXES[select.value];
        fieldset.querySelectorAll(".form-row").forEach(function (row) {
            const names = fieldNames(row);
            if (names.length === 0 || names.includes("auth_type")) {
                return;
            }
            const shown = prefix !== undefined && names.some(function (name) { return name.startsWith(prefix); });
            row.style.display = shown ? "" : "none";
        });
    }

    document.addEventListener("DOMContentLoaded", function () {
        const select = document.getElementById("id_auth_type");
        if (!select) {
            return;
        }
        update(select);
        select.addEventListener("change", function () { update(select); });
    });
})();
