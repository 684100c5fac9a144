"""Lambda REQUEST authorizer of every keyed route: the x-api-key header's key, found in the
service's own key store, allowed with its key id, customer and plan in the context (API Gateway
caches the answer per key value for KeyCacheSeconds), else denied (alphacut.aws.keys.authorizer)."""

from alphacut.aws.keys.authorizer import Authorizer
from alphacut.aws.keys.store import KeyStore
from alphacut.aws.ledger.plans import PlanCatalogue
from alphacut.aws.secrets import secret_bytes
from alphacut.settings import ServiceSettings
from aws_lambda_powertools import Logger

logger = Logger()
settings = ServiceSettings.from_env()
table = settings.require("usage_table")
authorizer = Authorizer(
    KeyStore(table, secret_bytes(settings.require("key_hash_secret_arn"))), PlanCatalogue(table)
)


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return authorizer.authorize(event)
