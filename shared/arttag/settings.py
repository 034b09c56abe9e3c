"""Settings: one pydantic-settings class per process, from ARTTAG_* environment variables.

Nested values use ``__``: ``ARTTAG_KAFKA__BOOTSTRAP_SERVERS=broker:9092``,
``ARTTAG_KAFKA__SASL_PASSWORD=...``. Settings are built only by entry points
and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from arttag import limits


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("arttag"))


class KafkaSettings(BaseModel):
    """Connection to a Kafka cluster: the local broker or a managed one (SASL/SSL)."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    client_id: str = "arttag"
    topic_prefix: str = Field("", description="Prepended to every topic name, e.g. 'museum1.'")
    partitions: int = Field(3, ge=1, description="Partitions for topics arttag creates")
    replication_factor: int = Field(1, ge=1)

    def confluent_config(self) -> dict[str, str]:
        """librdkafka configuration for confluent-kafka clients."""
        config: dict[str, str] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_cafile:
            config["ssl.ca.location"] = str(self.ssl_cafile)
        if self.ssl_certfile:
            config["ssl.certificate.location"] = str(self.ssl_certfile)
        if self.ssl_keyfile:
            config["ssl.key.location"] = str(self.ssl_keyfile)
        return config


class EncoderSettings(BaseModel):
    """Where the sentence encoder lives and how onnxruntime runs it."""

    model_config = ConfigDict(frozen=True)

    model_dir: Path = Field(default_factory=lambda: default_cache_dir() / "models" / "all-mpnet-base-v2")
    onnx_dir: Path | None = Field(None, description="Exported ONNX folder; default <model_dir>-onnx")
    variant: Literal["auto", "measure", "fp32", "int8"] = Field(
        "auto",
        description="auto: int8 where the CPU has VNNI/AMX (an int8 dot product), fp32 elsewhere and on "
        "CUDA; measure: time both at start-up and keep the faster; a bundle's own variant wins over "
        "auto/measure (docs/encoder.md)",
    )
    intra_op_threads: int = Field(0, ge=0, description="0 lets onnxruntime choose")
    spin_wait: bool = Field(False, description="onnxruntime threads spin between runs (idle machines only)")
    execution_provider: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(32, ge=1)
    cache_size: int = Field(100_000, ge=0, description="Embeddings kept in memory, keyed by text hash")
    cache_dir: Path | None = Field(
        None,
        description="Folder of .npz embedding caches, one per encoder (<encoder name>.npz, the layout of "
        "`arttag train --embedding-cache`): the encoder starts with the file's embeddings when it is "
        "there and made by the same model export, and the stream worker writes what it holds back "
        "at shutdown; unset: memory only",
    )
    # Bulk work (`arttag replay`) on a GPU with torch; the runtime above never imports torch.
    bulk_device: str | None = Field(
        None, pattern=r"^(cpu|cuda(:\d+)?)$",
        description="cuda, cuda:N or cpu: replay encodes with the torch bulk encoder (arttag[export]) "
        "when the bundle is an fp32 one; unset: the ONNX encoder everywhere",
    )
    bulk_dtype: Literal["bf16", "fp16", "fp32"] = Field("bf16", description="Precision of the bulk encoder")
    bulk_batch_size: int = Field(1024, ge=1, description="Texts per batch of the bulk encoder")

    @property
    def resolved_onnx_dir(self) -> Path:
        return self.onnx_dir or self.model_dir.with_name(self.model_dir.name + "-onnx")


class CommonSettings(BaseSettings):
    """Settings every arttag process shares."""

    model_config = SettingsConfigDict(
        env_prefix="ARTTAG_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    encoder: EncoderSettings = EncoderSettings()
    bundle_dir: Path = Field(
        default_factory=lambda: default_cache_dir() / "bundles" / "current",
        description="Trained model bundle used for suggestions",
    )
    bundle_reload_interval_s: float = Field(
        30.0, ge=0,
        description="How often the worker and the API look for a new current bundle (hot reload); 0 disables",
    )
    bundle_keep_versions: int = Field(
        3, ge=1, description="Bundle versions `arttag train` keeps behind the pointer (never the current one)"
    )
    curation_database_url: str = Field(
        default_factory=lambda: f"sqlite:///{default_cache_dir() / 'curation.db'}",
        description="SQLAlchemy URL of the curation database `arttag curate` writes and the API reads: "
        "sqlite:///path (default) or postgresql+psycopg://user:password@host/db (arttag[postgres])",
    )
    log_level: str = "INFO"


class StreamSettings(CommonSettings):
    """The stream worker (`arttag stream`)."""

    consumer_group: str = "arttag-stream"
    batch_max_events: int = Field(32, ge=1)
    batch_max_ms: int = Field(200, ge=1)
    batch_idle_ms: int = Field(
        20, ge=1, description="A micro-batch also closes when no event arrived for this long"
    )
    suggestion_limit: int = Field(10, ge=1)
    auto_apply_precision: float | None = Field(
        None, gt=0.0, le=1.0,
        description="Mark suggestions at or above the bundle's confidence threshold for this precision "
        "(0.95 or 0.9: the ones training stores) `auto_apply: true`, safe to apply unreviewed; unset: never mark")
    metrics_port: int = Field(9108, ge=0, description="Prometheus metrics port; 0 disables")
    web_port: int = Field(6066, ge=1)
    data_dir: Path = Field(default_factory=lambda: default_cache_dir() / "stream")
    encoder_kind: Literal["onnx", "hashing"] = Field(
        "onnx", description="Encoder the bundle is loaded with; 'hashing' for tests and dry runs"
    )
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    commit_interval_s: float = Field(1.0, gt=0, description="How often acknowledged offsets are committed")
    session_timeout_s: float = Field(30.0, gt=0, description="Consumer group session timeout")
    heartbeat_interval_s: float = Field(3.0, gt=0)
    group_instance_id: str | None = Field(
        None, min_length=1, max_length=249,
        description="Static group membership (KIP-345): a worker restarted under the same id gets "
        "its partitions back at once instead of after the session timeout. Unique per worker; "
        "unset: dynamic membership",
    )
    max_record_bytes: int = Field(
        limits.DEFAULT_MAX_RECORD_BYTES, ge=limits.MIN_RECORD_BYTES,
        description="No record the worker publishes is larger (key, value, headers); keep it "
        "below the broker's message.max.bytes. Larger dead letters keep a prefix of the original",
    )
    online_learning: bool = Field(
        True, description="Learn from tags.decisions.v1: artworks with accepted tags become tagged "
        "neighbours at once, and rejected tags are not suggested again for their artwork while its "
        "content is unchanged (docs/curation.md, 'Learning from decisions')",
    )
    max_attempts: int = Field(
        3, ge=0,
        description="A message whose processing began this many times without finishing (the "
        "worker crashed or was killed) is dead-lettered as repeated-failure; 0: never",
    )


class ApiSettings(CommonSettings):
    """The HTTP API (`arttag api`)."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key_hashes: list[str] = Field(
        default_factory=list, description="sha256 hex digests of accepted API keys"
    )
    public_reads: bool = True
    max_batch: int = Field(64, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1)
    max_request_text_chars: int = Field(
        100_000, ge=1, description="Characters of text in all artworks of one suggest request together"
    )
    suggestion_limit: int = Field(10, ge=1)
    latest_view: bool = Field(True, description="Follow the latest-suggestions topic")
    online_learning: bool = Field(
        True, description="Learn from tags.decisions.v1: artworks with accepted tags become tagged "
        "neighbours of the bundle the API loads (docs/curation.md, 'Learning from decisions')",
    )
    # Load shedding (docs/api-safety.md): refuse early with 429/503 instead of queueing.
    rate_limit_anonymous_per_s: float = Field(
        5.0, ge=0, description="Sustained /v1 requests per second per client address without a key; 0: no limit"
    )
    rate_limit_anonymous_burst: int = Field(10, ge=1, description="Requests an anonymous address may send at once")
    rate_limit_keyed_per_s: float = Field(
        20.0, ge=0, description="Sustained /v1 requests per second per API key; 0: no limit"
    )
    rate_limit_keyed_burst: int = Field(40, ge=1, description="Requests one API key may send at once")
    rate_limit_max_clients: int = Field(
        100_000, ge=1, description="Buckets kept; the least recently seen client is forgotten beyond it"
    )
    queue_max_artworks: int = Field(
        128, ge=1, description="Artworks waiting for the tagger; more is answered 503 at once"
    )
    queue_max_wait_s: float = Field(
        10.0, ge=0, description="A request that waited longer for the tagger is answered 503; 0: no limit"
    )
    metrics_enabled: bool = Field(True, description="Serve GET /metrics")
    metrics_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
                                 "192.168.0.0/16", "fc00::/7"],
        description="Client networks /metrics answers; others get 404",
    )
    docs_enabled: bool = Field(True, description="Serve /docs, /redoc and /openapi.json")
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the API; empty: CORS off"
    )
    curators: dict[str, str] = Field(
        default_factory=dict,
        description='Curators and their keys: {"<curator id>": "<sha256 hex of their key>"}; a curator '
        "sends X-API-Key and decides as that id (docs/curation.md)",
    )
    public_votes: bool = Field(
        True, description="Public contributors may register (POST /v1/contributors) and vote (POST /v1/votes)"
    )
    catalogue_view: bool | None = Field(
        None, description="Follow the artwork topics for the metadata of GET /v1/artworks/{id} and the "
        "review queue; unset: as latest_view",
    )
    # The review desk (docs/review.md): /review pages with signed session cookies.
    review_enabled: bool = Field(True, description="Serve the review desk at /review")
    session_secret: SecretStr | None = Field(
        None, min_length=32,
        description="Key that signs session cookies (32+ characters; every replica needs the same); "
        "unset: a random one per start, so sessions do not survive a restart",
    )
    session_max_age_s: int = Field(8 * 3600, ge=60, description="A session cookie older than this is refused")
    review_undo_window_s: float = Field(
        10.0, ge=0,
        description="A review action is held this long (or until the same person's next action) so it "
        "can be undone, then published; 0: published at once, no undo",
    )

    @field_validator("metrics_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad entry
        return value

    @field_validator("curators")
    @classmethod
    def _curators(cls, value: dict[str, str]) -> dict[str, str]:
        for curator_id, digest in value.items():
            if not curator_id.strip():
                raise ValueError("a curator id may not be empty")
            if not re.fullmatch(r"[0-9a-fA-F]{64}", digest.strip()):
                raise ValueError(f"curator {curator_id!r}: the key must be given as its sha256 hex digest "
                                 "(64 hex digits), never the key itself")
        return {c: d.strip().lower() for c, d in value.items()}

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            # an explicit list: a wildcard would let any page use a key a browser holds
            if not re.fullmatch(r"https?://[^/\s*]+", origin):
                raise ValueError(f"{origin!r} is not an origin like https://collection.example.org "
                                 "(scheme and host, optional port, no path, no wildcard)")
        return value


class CliSettings(CommonSettings):
    """One-shot commands (`arttag train`, `arttag backfill`, ...)."""


class CurateSettings(CommonSettings):
    """The curation processor (`arttag curate`): feedback in, decided tags out (docs/curation.md)."""

    curate_group: str = Field(
        "arttag-curate", description="Group its offsets are committed under (for lag monitoring; "
        "the processor always rebuilds its state from the start of the feedback topic)",
    )
    consensus_min_contributors: int = Field(
        3, ge=1, description="k: distinct public contributors (with weight > 0) who must agree"
    )
    consensus_min_margin: float = Field(
        2.0, ge=0, description="m: their summed weight must exceed the other side's by at least this"
    )
    trust_prior_votes: float = Field(
        2.0, gt=0, description="Pseudo-votes, half confirmed and half contradicted, every contributor "
        "starts with; larger: curators' verdicts move a weight more slowly",
    )
    min_seconds_between_votes: float = Field(
        2.0, ge=0, description="A public vote less than this after the same contributor's previous "
        "one is implausibly fast; the share of such votes is taken off the contributor's weight",
    )
    accept_all_min_votes: int = Field(
        20, ge=1, description="Votes a contributor must have cast before the accept-everything rule applies"
    )
    accept_all_max_share: float = Field(
        0.95, gt=0, le=1, description="A contributor accepting more than this share of their votes "
        "(over at least accept_all_min_votes) accepts everything"
    )
    accept_all_factor: float = Field(
        0.2, ge=0, le=1, description="Weight multiplier of a contributor who accepts everything"
    )
    poll_s: float = Field(0.5, gt=0, description="Longest wait for new feedback in one poll")
