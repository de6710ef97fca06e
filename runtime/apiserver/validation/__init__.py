"""runtime/apiserver/validation: what a real server refuses, with its field paths and messages.

    fields.py      fieldValidation Ignore/Warn/Strict for unknown and duplicate fields; validate()
    fieldtree.py   per-kind field trees (from the OpenAPI definitions / CRD schemas) and prune()
    duplicates.py  duplicate keys in a JSON body (the strict decoder's `duplicate field`)
    names.py       DNS-1123 / qualified-name / label-value checks with apimachinery's messages
    rules/         per-kind validation (ValidatePod, ValidateDeployment, …) as field errors

Flow: handlers.writes → fields.check_fields (unknown/duplicate) → fields.validate → rules.errors_for
→ a 422 `Invalid` Status listing every field error.
"""
