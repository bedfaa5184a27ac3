// Shows only the fields of the chosen auth type, and the fieldset of the chosen kind of action.
// Without JavaScript every field stays visible, each labelled with what it belongs to.
"use strict";
(function () {
    const PREFIXES = {
        basic: "basic_",
        bearer: "bearer_",
        api_key: "api_key_",
        oauth2_client_credentials: "oauth2_",
        token_endpoint: "token_",
        google_service_account: "google_",
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

    // An HTTP action shows the Request set, an email action the Email set.
    function showKind(kind) {
        document.querySelectorAll("fieldset.conduit-kind-http, fieldset.conduit-kind-email").forEach(function (set) {
            const mine = set.classList.contains("conduit-kind-" + kind.value);
            set.style.display = mine ? "" : "none";
        });
    }

    document.addEventListener("DOMContentLoaded", function () {
        const kind = document.getElementById("id_kind");
        if (kind) {
            showKind(kind);
            kind.addEventListener("change", function () { showKind(kind); });
        }
        const select = document.getElementById("id_auth_type");
        if (!select) {
            return;
        }
        update(select);
        select.addEventListener("change", function () { update(select); });
    });
})();
