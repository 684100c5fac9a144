"""Drop-in routes for the five vendor APIs in ../shared/seeds: one thin adapter per contract,
translating the vendor's request into the native options and the pipeline's result back into that
vendor's own envelope, field names and error codes. A customer switches by changing the URL.

Each module holds one Powertools ``Router``; ``alphacut.api.app`` includes them all.
"""

from alphacut.api.vendors import aidge, ailab_costume, jd_cutout, jd_selfie, picwish_tasks, removebg

ROUTERS = [jd_cutout.router, jd_selfie.router, picwish_tasks.router, aidge.router, ailab_costume.router,
           removebg.router]
