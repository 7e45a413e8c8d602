"""Pipeline transformers: policies applied to pipelines."""
