"""Redshift as a warehouse (RudderStack's `RS`): events loaded into tables in the customer's
cluster, one schema per source, through files in their S3 bucket (see
`engine.destinations.warehouse` and `engine.warehouses.redshift`).

The bucket is written with the S3 destination's uploader (its checks, errors and keys), and
the settings are checked as the S3 destination checks its own when they are saved.
"""

import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from engine.destinations.base import DestinationType
from engine.destinations.s3 import S3Settings, Uploader
from engine.destinations.warehouse import FILES, mappings
from engine.warehouses.redshift import Credentials, RedshiftWarehouse
from engine.warehouses.settings import RedshiftSettings
from engine.warehouses.warehouse import WarehouseError, WarehouseKind

_map, _map_from = mappings("RS")


class RedshiftConfig(RedshiftSettings, kw_only=True):
    def __post_init__(self) -> None:
        super().__post_init__()
        _bucket(self)  # the S3 destination's checks of a bucket, a prefix and keys


def _bucket(settings: RedshiftSettings) -> S3Settings:
    return S3Settings(
        bucketName=settings.bucketName, prefix=settings.prefix,
        accessKeyID=settings.accessKeyID, accessKey=settings.accessKey,
        region=settings.region, endpoint=settings.endpoint or None,
        enableSSE=settings.enableSSE,
    )  # fmt: skip


class S3Bucket:
    """The destination's bucket, where a load's files wait for `COPY`."""

    def __init__(self, settings: RedshiftSettings) -> None:
        self._s3 = _bucket(settings)
        self._uploads = Uploader()
        self.region = self._s3.region_name or ""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        await self._uploads.aclose()

    def url(self, name: str) -> str:
        return f"s3://{self._s3.bucketName}/{self._key(name)}"

    async def put(self, name: str, body: bytes) -> None:
        stored = await self._uploads.store(self._s3, self._key(name), body)
        if stored.error is not None:
            raise WarehouseError(f"storing {self.url(name)} for COPY: {stored.error}")

    async def delete(self, names: Sequence[str]) -> None:
        with contextlib.suppress(Exception):  # files left behind cost storage, not events
            await self._uploads.remove(self._s3, [self._key(name) for name in names])

    async def credentials(self) -> Credentials:
        try:
            return Credentials(*await self._uploads.credentials(self._s3))
        except Exception as exc:
            raise WarehouseError(f"AWS credentials for COPY: {exc}") from None

    def _key(self, name: str) -> str:
        return f"{self._s3.folder}/{name}" if self._s3.folder else name


def _open(settings: RedshiftSettings) -> RedshiftWarehouse:
    return RedshiftWarehouse(settings, S3Bucket(settings))


REDSHIFT = DestinationType(
    name="redshift",
    title="Amazon Redshift (warehouse)",
    category="Warehouses",
    description="Load every event into Redshift tables through S3.",
    settings=RedshiftConfig,
    map=_map,
    map_from=_map_from,
    secret_keys=("password", "accessKey"),
    files=FILES,
    warehouse=WarehouseKind("RS", _open, sessions=2),
)
