# ruff: noqa: E501  (photo names and SHA-256 values cannot wrap)
"""The held-out photographs: never trained on, for the benchmark and the quality tests.

Fixed by name and by the SHA-256 of the file the data step writes (each is the
package's own bytes, not a re-encoding), so the split is the same on every
machine; a package update that changes one is an error in the data step, not a
silently different benchmark. None of code-prior-s's 17 training photographs
is here, so old and new priors are measured on photographs neither has seen.
Chosen to span sources and subjects: people, animals, buildings, plants,
water, objects, landscape, food.
"""

HELDOUT: dict[str, str] = {
    "skimage/chelsea": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "mate/LadyBird.jpg": "e35a9a4126ef969c90b29c038058c5a575a20eadd84106a37bf1fa9931e7b61d",
    "mahotas/luispedro.jpg": "27e7af47501a4e9a06e4d8bd8b834bd773fe7b187baef2f47e120c663524bed1",
    "gcompris/explore_world_music/resource/music/japan.webp": "0f0aa2d3116e01acdc693b626b1b60699124145670e624121289a7ced5020679",
    "sporco/kodim23.png": "34d8f029d2eae3ed37b65e2f94fd2c319923ebfae0fa8bff5f001e2565b7d80f",
    "gcompris/erase/resource/kingfisher.webp": "b637658d7e0f8f555b5683a8c912646d57ba37be6ba9684df893a1d07ee9e637",
    "gcompris/explore_monuments/resource/france/chateaudeChambord.webp": "a96693bfff66c9a747a066b8d798aaf876427de969603c4125bf881f8af0ac2d",
    "palapeli/cincinnati-bridge.jpg": "09772d09318b34a5c5edd58ee86ff462bcd2907006f31cc8e0704310f8e9ab60",
    "enlightenment/Red-Maple.jpg": "bb6097ffef927fb219f7225da09df55ce2110a8c2b636d6e387802b9c1bf567e",
    "lxqt/after-the-rain.jpg": "e6cb8b3e09b904cc493ff17fddcd564d4e46a1761d05adf972c285a1fd878234",
    "tuxpaint/ocean_waves.jpg": "b99c24c7148cb2935c7a9cfde12b81f368f8162e32349e554a8cb2dd44c5624e",
    "gcompris/clickgame/resource/sea3.webp": "9c8236a6ade2a59fb05dfe03802cd9aa5d5e672c85731b136847287c33265974",
    "tuxpaint/wool_mill_machine.jpg": "e66d36c482d32cc5bfd001923e584cf6398ef95039d92e9d2e65f64c33274a18",
    "gcompris/categorization/resource/images/tools/scissors2.webp": "ebea0e41fbab5b01f266818e64154a9c22d28df3dc97eb411a192acbdb2055a1",
    "lomiri/picosdeeuropa_by_Aitzol_Berasategi.jpg": "414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a",
    "palapeli/citrus-fruits.jpg": "0cbd7154a14789803167c86705130d0358875198231269df168ea26224e70848",
}
