"""The audience rule language: parse and validate (ast), compile to SQL (compiler), evaluate for
one customer (evaluator). docs/audiences.md is the user-facing reference."""
