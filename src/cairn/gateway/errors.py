"""S3's errors, as the gateway answers them: ``S3Error`` carries S3's code and HTTP status,
and the app turns it into S3's XML error document, so SDKs raise their usual exceptions
(boto3: ``botocore.exceptions.ClientError`` with ``Error.Code`` set to the code).

Codes and statuses are those of the S3 API reference's error list
(https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html)."""

from __future__ import annotations

__all__ = ["STATUS", "S3Error"]

# S3 code -> HTTP status, for the codes the gateway answers.
STATUS: dict[str, int] = {
    "AccessDenied": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "BadDigest": 400,
    "BucketAlreadyOwnedByYou": 409,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "InternalError": 500,
    "InvalidAccessKeyId": 403,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "MalformedXML": 400,
    "MethodNotAllowed": 405,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NotImplemented": 501,
    "OperationAborted": 409,
    "PreconditionFailed": 412,
    "RequestTimeTooSkewed": 403,
    "SignatureDoesNotMatch": 403,
    "XAmzContentSHA256Mismatch": 400,
}


class S3Error(Exception):
    """An S3 error answer: ``code`` (a key of ``STATUS``), a message for people, and the
    ``bucket`` / ``key`` it concerns (echoed in the document)."""

    def __init__(
        self, code: str, message: str, *, bucket: str | None = None, key: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.bucket = bucket
        self.key = key

    @property
    def status(self) -> int:
        return STATUS[self.code]
