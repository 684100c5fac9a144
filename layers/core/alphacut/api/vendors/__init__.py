"""Drop-in routes for the vendor APIs users switch from (JD Cloud matting, JD NeuHub selfie, PicWish-style
tasks, Alibaba AIDGE, AILabTools-style costume, remove.bg): one thin adapter per contract,
translating the vendor's request into the native options and the pipeline's result back into that
vendor's own envelope, field names and error codes. A customer switches by changing the URL.

Each module holds one Powertools ``Router``; ``alphacut.api.app`` includes them all.
"""

from alphacut.api.openapi import RouteDoc
from alphacut.api.vendors import aidge, ailab_costume, jd_cutout, jd_selfie, picwish_tasks, removebg

ROUTERS = [
    jd_cutout.router,
    jd_selfie.router,
    picwish_tasks.router,
    aidge.router,
    ailab_costume.router,
    removebg.router,
]

VENDOR_ROUTES = [
    RouteDoc(
        "/api/cutout/",
        "post",
        "JD Cloud image matting",
        "The raw image as the body; answers "
        "{code, msg, result: {status, message, requestid, cutout_image_url}}.",
        tag="vendor-compatible",
    ),
    RouteDoc(
        "/jdai/SelfieSeg",
        "post",
        "JD NeuHub selfie segmentation",
        "JSON {image: base64}; answers "
        "{code, charge, remain, msg, result: {status, message, image, used_time}}.",
        tag="vendor-compatible",
    ),
    RouteDoc(
        "/api/tasks/visual/segmentation",
        "post",
        "PicWish-style segmentation task",
        "multipart image_file or image_url; sync, type, return_type, output_type, crop, format, bg_color.",
        tag="vendor-compatible",
    ),
    RouteDoc(
        "/api/tasks/visual/segmentation/{task_id}", "get", "PicWish-style task state", tag="vendor-compatible"
    ),
    RouteDoc(
        "/ai/image/cut/out",
        "post",
        "Alibaba AIDGE background removal",
        "imageUrl or imageBase64, backGroundType, targetWidth/targetHeight.",
        tag="vendor-compatible",
    ),
    RouteDoc(
        "/ai/image/cut/out",
        "get",
        "Alibaba AIDGE background removal, parameters in the query string",
        "imageUrl, backGroundType, targetWidth/targetHeight.",
        tag="vendor-compatible",
    ),
    RouteDoc(
        "/api/cutout/general/apparel-background-removal",
        "post",
        "AILabTools-style costume background removal",
        "multipart image, cloth_class, return_form.",
        tag="vendor-compatible",
    ),
    RouteDoc(
        "/v1.0/removebg",
        "post",
        "remove.bg background removal (remove.bg's own REST API in the stack)",
        "image_file, image_file_b64 or image_url and every remove.bg parameter; answers the image or "
        "{data: {result_b64, foreground_*}}; errors {errors: [{title, code, detail}]}.",
        tag="vendor-compatible",
    ),
    RouteDoc("/v1.0/account", "get", "remove.bg account: the calls left today", tag="vendor-compatible"),
]
