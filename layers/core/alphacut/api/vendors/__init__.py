"""Drop-in routes for the vendor APIs users switch from (JD Cloud matting, JD NeuHub selfie, PicWish-style
tasks, Alibaba AIDGE, AILabTools-style costume, remove.bg): one thin adapter per contract,
translating the vendor's request into the native options and the pipeline's result back into that
vendor's own envelope, field names and error codes. A customer switches by changing the URL.

Each module holds one Powertools ``Router`` and its contract's document (``ROUTES``: its
operations, schemas and envelopes); ``alphacut.api.app`` includes them all.
"""

from alphacut.api.vendors import aidge, ailab_costume, jd_cutout, jd_selfie, picwish_tasks, removebg

ROUTERS = [
    jd_cutout.router,
    jd_selfie.router,
    picwish_tasks.router,
    aidge.router,
    ailab_costume.router,
    removebg.router,
]
# each module's own document: the routes on the native REST API, and remove.bg's own API
VENDOR_ROUTES = [
    *jd_cutout.ROUTES,
    *jd_selfie.ROUTES,
    *picwish_tasks.ROUTES,
    *aidge.ROUTES,
    *ailab_costume.ROUTES,
]
REMOVEBG_ROUTES = removebg.ROUTES
# each route's envelope for a refusal before it runs (over the key's rate), by its resource
VENDOR_ENVELOPES = {
    route.path.rstrip("/"): module.ENVELOPE
    for module in (jd_cutout, jd_selfie, picwish_tasks, aidge, ailab_costume, removebg)
    for route in module.ROUTES
}
