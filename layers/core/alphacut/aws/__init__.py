"""AWS adapters, all in one place: the image domain never imports boto3; these modules do.

Clients honour ``AWS_ENDPOINT_URL`` (and per-service variants), which is how the local stack
points them at moto.
"""
