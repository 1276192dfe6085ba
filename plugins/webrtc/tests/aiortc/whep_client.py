"""A WHEP viewer built on aiortc (a WebRTC stack the project did not write).

Usage: whep_client.py BASE_URL FRAMES [RESULTS]

Offers a recvonly video transceiver to BASE_URL/whep, decodes FRAMES frames of the video track
(aiortc decodes H.264 with libavcodec), deletes the session, and prints one JSON line:
{"frames": N, "width": W, "height": H, "codec": "...", "keyframes": K}.

With RESULTS, it also opens a data channel labelled "detections" (unordered, no retransmission,
as the viewer page does) and reads until RESULTS messages have come as well; the line then has
"messages" (each message parsed), "pts" (every decoded frame's pts) and "origin" (the RTP
timestamp of pts 0).
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


async def main(base, want, results):
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    frames = []
    pts = []
    messages = []
    done = asyncio.get_running_loop().create_future()

    def check():
        if len(frames) >= want and len(messages) >= results and not done.done():
            done.set_result(True)

    if results:
        channel = pc.createDataChannel("detections", ordered=False, maxRetransmits=0)

        @channel.on("message")
        def on_message(message):
            messages.append(json.loads(message))
            check()

    @pc.on("track")
    def on_track(track):
        async def read():
            try:
                while not done.done():
                    frame = await track.recv()
                    frames.append((frame.width, frame.height, frame.key_frame))
                    pts.append(frame.pts)
                    check()
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
    extra = {}
    if results:
        # aiortc's frame pts is the RTP timestamp less the first one it received (its
        # TimestampMapper's origin, a private attribute of aiortc 1.x): given here, so that
        # the RTP timestamps of the decoded frames can be told.
        receiver = pc.getReceivers()[0]
        mapper = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper", None)
        extra = {"messages": messages, "pts": pts, "origin": getattr(mapper, "_origin", None)}
    location = headers.get("Location")
    if location:
        await loop.run_in_executor(None, http, "DELETE", base + location)
    await pc.close()
    width, height, _ = frames[-1]
    print(json.dumps({
        **extra,
        "frames": min(len(frames), want) if not results else len(frames),
        "width": width,
        "height": height,
        "codec": codec,
        "keyframes": sum(1 for f in frames if f[2]),
    }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0))
