"""A WHEP viewer built on aiortc (a WebRTC stack the project did not write).

Usage: whep_client.py BASE_URL FRAMES

Offers a recvonly video transceiver to BASE_URL/whep, decodes FRAMES frames of the video track
(aiortc decodes H.264 with libavcodec), deletes the session, and prints one JSON line:
{"frames": N, "width": W, "height": H, "codec": "...", "keyframes": K}.
"""

import asyncio
import json
import sys
import urllib.request

from aiortc import RTCPeerConnection, RTCSessionDescription


def http(method, url, body=None, content_type=None):
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers, response.read().decode()


async def main(base, want):
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    frames = []
    done = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track):
        async def read():
            try:
                while len(frames) < want:
                    frame = await track.recv()
                    frames.append((frame.width, frame.height, frame.key_frame))
                done.set_result(True)
            except Exception as error:  # the track ended early
                if not done.done():
                    done.set_exception(error)

        asyncio.ensure_future(read())

    # aiortc gathers its candidates here: the offer is complete.
    await pc.setLocalDescription(await pc.createOffer())
    loop = asyncio.get_running_loop()
    status, headers, answer = await loop.run_in_executor(
        None, http, "POST", base + "/whep", pc.localDescription.sdp.encode(), "application/sdp"
    )
    if status != 201:
        raise SystemExit(f"POST /whep: {status} {answer}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await asyncio.wait_for(done, 30)
    codec = next(
        (line.split()[1] for line in answer.splitlines() if line.startswith("a=rtpmap:")), None
    )
    location = headers.get("Location")
    if location:
        await loop.run_in_executor(None, http, "DELETE", base + location)
    await pc.close()
    width, height, _ = frames[-1]
    print(json.dumps({
        "frames": len(frames),
        "width": width,
        "height": height,
        "codec": codec,
        "keyframes": sum(1 for f in frames if f[2]),
    }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
