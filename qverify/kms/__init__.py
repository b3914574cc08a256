"""Key management entities: stores filled by the network model, served over ETSI GS QKD 014 with mutual TLS.

* :mod:`qverify.kms.feed`: per-slot key per node pair (the JAX network model, or a table);
* :mod:`qverify.kms.store`: one SQLite (WAL) store per KME pair, exactly-once delivery;
* :mod:`qverify.kms.kme`: the KMEs and the 014 methods (status, enc_keys, dec_keys) as Python calls;
* :mod:`qverify.kms.server`: the REST server (Starlette under uvicorn), mutual TLS;
* :mod:`qverify.kms.pki`: a throw-away CA and certificates for local use;
* :mod:`qverify.kms.openapi`: the API's OpenAPI document.

The keys are random bytes from the operating system's CSPRNG, identical at both ends of a pair;
they are not secret in any physical sense (no photon was involved).
"""
