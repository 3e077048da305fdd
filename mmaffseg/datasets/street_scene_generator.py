# Copyright (c) mmaffseg contributors. All rights reserved.
"""Procedural street scenes with Cityscapes labels, for quick-starts and tests.

Each scene is drawn back to front in a one-point perspective: sky, a horizon band of buildings,
walls, fences and trees, a road running to a vanishing point between two sidewalks and terrain,
then poles with traffic signs and lights, and the thing classes (cars, trucks, buses, trains,
persons, riders on bicycles or motorcycles) sorted far to near so that near objects occlude far
ones. Object sizes follow the perspective (the lower the foot point, the larger), so every class
has a realistic height prior. Surfaces are textured (multi-scale noise, windows, bricks, lane
marks, foliage) and the class colour ranges overlap, so no per-pixel colour rule separates the
classes: a network has to use shape and context.

A scene is a pure function of ``(seed, index)``: image ``i`` is the same whatever the number of
images generated.

The layers painted together and the texture helpers are in
:mod:`~mmaffseg.datasets.street_scene_canvas`.
"""
from typing import List

import cv2
import numpy as np

from .cityscapes_labels import CITYSCAPES_CLASSES, TRAIN_ID_TO_LABEL_ID, VOID_LABEL_ID
from .street_scene_canvas import TRAIN_ID_BY_NAME, Canvas, Scene, grid_pattern, jitter


class StreetSceneGenerator:
    """Render Cityscapes-like street scenes.

    Args:
        height (int): Image height in pixels. Default: 256.
        width (int): Image width in pixels. Default: 512.
        noise_std (float): Std of the additive Gaussian sensor noise (0-255 scale). Default: 6.
    """

    def __init__(self, height: int = 256, width: int = 512, noise_std: float = 6.0):
        if height < 32 or width < 32:
            raise ValueError(f'scenes need at least 32x32 pixels, got {height}x{width}')
        self.h, self.w, self.noise_std = height, width, noise_std

    # -- layout -------------------------------------------------------------------------------
    def render(self, seed: int, index: int) -> Scene:
        """Render scene ``index`` of the stream seeded by ``seed``."""
        rng = np.random.default_rng([seed, index])
        c = Canvas(rng, self.h, self.w)
        h, w = self.h, self.w
        horizon = int(h * rng.uniform(0.38, 0.5))
        vx = w * rng.uniform(0.35, 0.65)
        self._sky(c, horizon)
        self._ground(c, horizon, vx)
        self._buildings(c, horizon)
        self._walls_and_fences(c, horizon)
        self._trees(c, horizon)
        objects = self._place_objects(c, horizon, vx)
        for _, draw in sorted(objects, key=lambda o: o[0]):  # far (small foot y) first
            draw()
        return self._finish(c)

    def _sky(self, c: Canvas, horizon: int) -> None:
        rng = c.rng
        top, bottom = jitter(rng, (110, 160, 225), 30), jitter(rng, (200, 215, 235), 20)
        t = np.linspace(0, 1, c.h, dtype=np.float32)[:, None, None]
        gradient = (1 - t) * top + t * bottom
        clouds = np.clip(c.coarse * 0.8 + 0.3 * c.mid, 0, None)[..., None]
        c.image[:] = gradient + 45 * clouds
        c.label[:] = TRAIN_ID_BY_NAME['sky']

    def _road_edges(self, horizon: int, vx: float, rng: np.random.Generator):
        left = self.w * rng.uniform(-0.35, 0.15)
        right = self.w * rng.uniform(0.85, 1.35)
        return left, right

    def _ground(self, c: Canvas, horizon: int, vx: float) -> None:
        rng, h, w = c.rng, c.h, c.w
        m = c.mask()
        m[horizon:] = 1
        c.paint(m, 'terrain', jitter(rng, (110, 125, 70), 25), texture=0.3)
        left, right = self._road_edges(horizon, vx, rng)
        self.road = (left, right, vx, horizon)
        apex = w * 0.015
        for side, edge in (('l', left), ('r', right)):
            width = w * rng.uniform(0.2, 0.45)
            outer = edge - width if side == 'l' else edge + width
            pts = np.array([[edge, h], [outer, h], [vx + (-3 if side == 'l' else 3) * apex,
                                                    horizon], [vx, horizon]], np.int32)
            m = c.mask()
            cv2.fillPoly(m, [pts], 1)
            brick = grid_pattern(h, w, 0, 0, (6, 12), 0.85, 1.08)
            c.paint(m, 'sidewalk', jitter(rng, (150, 140, 130), 25), texture=0.15,
                    pattern=brick)
        m = c.mask()
        pts = np.array([[left, h], [right, h], [vx + apex, horizon], [vx - apex, horizon]],
                       np.int32)
        cv2.fillPoly(m, [pts], 1)
        marks = np.ones((h, w), np.float32)
        lane = c.mask()
        cv2.line(lane, (int((left + right) / 2), h), (int(vx), horizon), 1,
                 max(1, w // 160))
        dashes = ((np.arange(h) // max(4, h // 24)) % 2 == 0)[:, None]
        marks[(lane > 0) & dashes] = 2.0
        c.paint(m, 'road', jitter(rng, (105, 100, 105), 20), texture=0.15, pattern=marks)

    def _buildings(self, c: Canvas, horizon: int) -> None:
        rng, h, w = c.rng, c.h, c.w
        x = int(-rng.uniform(0, 0.1) * w)
        palettes = [(150, 150, 150), (170, 150, 120), (140, 90, 70), (190, 185, 170),
                    (110, 110, 120)]
        while x < w:
            bw = int(w * rng.uniform(0.08, 0.25))
            if rng.random() < 0.15:  # a gap showing the sky
                x += bw // 2
                continue
            top = int(h * rng.uniform(0.03, 0.3))
            bottom = horizon + int(h * rng.uniform(0.0, 0.04))
            m = c.mask()
            m[top:bottom, max(0, x):max(0, x + bw)] = 1
            cell = (int(rng.integers(10, 18)), int(rng.integers(10, 20)))
            windows = grid_pattern(h, w, x + 3, top + 4, cell, rng.uniform(0.4, 0.6),
                                    rng.uniform(0.35, 0.6))
            colour = jitter(rng, palettes[rng.integers(len(palettes))], 20)
            c.paint(m, 'building', colour, texture=0.1, pattern=windows)
            x += bw

    def _walls_and_fences(self, c: Canvas, horizon: int) -> None:
        rng, h, w = c.rng, c.h, c.w
        for _ in range(rng.integers(0, 3)):
            cls = 'wall' if rng.random() < 0.5 else 'fence'
            x0 = int(rng.uniform(0, 0.8) * w)
            x1 = x0 + int(w * rng.uniform(0.08, 0.25))
            bottom = horizon + int(h * rng.uniform(0.02, 0.08))
            top = bottom - int(h * rng.uniform(0.05, 0.12))
            m = c.mask()
            m[top:bottom, x0:x1] = 1
            if cls == 'wall':
                c.paint(m, 'wall', jitter(rng, (135, 130, 125), 25), texture=0.2)
            else:
                bars = grid_pattern(h, w, x0, top, (5, 5), 0.6, 0.55)
                c.paint(m, 'fence', jitter(rng, (120, 105, 85), 25), texture=0.1,
                        pattern=bars)

    def _trees(self, c: Canvas, horizon: int) -> None:
        rng, h, w = c.rng, c.h, c.w
        for _ in range(rng.integers(1, 6)):
            cx = int(rng.uniform(0, 1) * w)
            cy = int(rng.uniform(0.15, 0.42) * h)
            rx, ry = int(w * rng.uniform(0.03, 0.09)), int(h * rng.uniform(0.07, 0.16))
            m = c.mask()
            cv2.ellipse(m, (cx, cy), (rx, ry), 0, 0, 360, 1, -1)
            m[cy:horizon + int(0.03 * h), cx - max(1, w // 200):cx + max(2, w // 200)] = 1
            foliage = 1 + 0.35 * np.sign(c.fine) * (np.abs(c.fine) > 1.0)
            c.paint(m, 'vegetation', jitter(rng, (60, 105, 45), 25), texture=0.35,
                    pattern=foliage.astype(np.float32))

    # -- objects ------------------------------------------------------------------------------
    def _scale(self, foot_y: float, horizon: int) -> float:
        return max(0.02, (foot_y - horizon) / (self.h - horizon))

    def _road_x(self, rng, foot_y: float) -> float:
        left, right, vx, horizon = self.road
        t = (foot_y - horizon) / (self.h - horizon)
        lo, hi = vx + t * (left - vx), vx + t * (right - vx)
        return rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo))

    def _sidewalk_x(self, rng, foot_y: float) -> float:
        left, right, vx, horizon = self.road
        t = (foot_y - horizon) / (self.h - horizon)
        edge = vx + t * ((left if rng.random() < 0.5 else right) - vx)
        offset = rng.uniform(0.02, 0.2) * self.w * t
        return edge - offset if edge < vx else edge + offset

    def _place_objects(self, c: Canvas, horizon: int, vx: float) -> List[tuple]:
        rng, h = c.rng, c.h
        objs = []

        def foot(lo=0.08, hi=0.95):
            return horizon + (h - horizon) * rng.uniform(lo, hi)

        for _ in range(rng.integers(1, 5)):
            y = foot(0.05, 0.5)
            objs.append((y, self._pole_factory(c, self._sidewalk_x(rng, y), y, horizon)))
        counts = {'car': rng.integers(2, 7), 'person': rng.integers(1, 6),
                  'rider': rng.integers(0, 3), 'truck': rng.integers(0, 2),
                  'bus': int(rng.random() < 0.4), 'train': int(rng.random() < 0.15)}
        for cls, n in counts.items():
            for _ in range(n):
                if cls == 'person':
                    y = foot(0.1, 0.95)
                    x = self._sidewalk_x(rng, y)
                elif cls == 'train':
                    y = foot(0.03, 0.12)
                    x = self._road_x(rng, y)
                else:
                    y = foot(0.1, 0.95) if cls != 'bus' else foot(0.1, 0.6)
                    x = self._road_x(rng, y)
                objs.append((y, self._thing_factory(c, cls, x, y, horizon)))
        return objs

    def _pole_factory(self, c: Canvas, x: float, y: float, horizon: int):
        def draw():
            rng, h = c.rng, c.h
            s = self._scale(y, horizon)
            height = int(h * (0.25 + 0.45 * s))
            half = max(1, int(3 * s + 0.5))
            top = int(y) - height
            m = c.mask()
            m[max(0, top):int(y), max(0, int(x) - half):int(x) + half] = 1
            c.paint(m, 'pole', jitter(rng, (95, 95, 100), 20), texture=0.1)
            size = max(3, int(h * 0.05 * (0.4 + s)))
            m = c.mask()
            if rng.random() < 0.5:
                cv2.circle(m, (int(x), top + size), size, 1, -1)
                c.paint(m, 'traffic sign', jitter(rng, [(200, 40, 40), (40, 70, 190),
                                                          (230, 200, 40)][rng.integers(3)], 20),
                        texture=0.05)
            else:
                m[max(0, top):top + 3 * size, int(x) - size // 2 - half:int(x) + size // 2
                  + half + 1] = 1
                lit = c.mask()
                cv2.circle(lit, (int(x), top + size // 2 + size * int(rng.integers(0, 3))),
                           max(1, size // 3), 1, -1)
                pattern = np.where(lit > 0, 4.0, 1.0).astype(np.float32)
                c.paint(m, 'traffic light', jitter(rng, (45, 45, 40), 10), texture=0.1,
                        pattern=pattern)
        return draw

    def _thing_factory(self, c: Canvas, cls: str, x: float, y: float, horizon: int):
        def draw():
            s = self._scale(y, horizon)
            getattr(self, f'_draw_{cls}')(c, x, y, s)
        return draw

    def _vehicle_body(self, c: Canvas, cls: str, x: float, y: float, height: float,
                      width: float, colour, window_rows: int = 1) -> None:
        """A box with a window band and dark wheels, all labelled ``cls`` (one instance)."""
        h, w = c.h, c.w
        inst = c.new_instance(cls)
        x0, x1 = int(x - width / 2), int(x + width / 2)
        y1, y0 = int(y), int(y - height)
        m = c.mask()
        cv2.rectangle(m, (x0, y0 + int(0.25 * height) if cls == 'car' else y0), (x1, y1), 1, -1)
        if cls == 'car':  # cabin
            cv2.rectangle(m, (int(x0 + 0.2 * width), y0), (int(x1 - 0.2 * width),
                                                           y0 + int(0.3 * height)), 1, -1)
        windows = np.ones((h, w), np.float32)
        band = int(0.08 * height) + 1
        for r in range(window_rows):
            wy = y0 + int((0.1 + 0.3 * r) * height)
            windows[wy:wy + 2 * band, x0 + band:x1 - band] = 0.45
        c.paint(m, cls, colour, texture=0.08, pattern=windows, instance=inst)
        wheels = c.mask()
        r = max(1, int(0.16 * height))
        for wx in (x0 + width * 0.2, x1 - width * 0.2):
            cv2.circle(wheels, (int(wx), y1 - r // 2), r, 1, -1)
        c.paint(wheels, cls, (35, 35, 35), texture=0.1, instance=inst)

    def _draw_car(self, c, x, y, s):
        height = c.h * 0.33 * s + 3
        palette = [(200, 200, 205), (30, 30, 35), (120, 120, 125), (150, 30, 30),
                   (30, 60, 140), (190, 170, 120)]
        self._vehicle_body(c, 'car', x, y, height, height * c.rng.uniform(1.5, 2.3),
                           jitter(c.rng, palette[c.rng.integers(len(palette))], 15))

    def _draw_truck(self, c, x, y, s):
        height = c.h * 0.5 * s + 4
        self._vehicle_body(c, 'truck', x, y, height, height * c.rng.uniform(1.6, 2.2),
                           jitter(c.rng, (170, 165, 150), 40))

    def _draw_bus(self, c, x, y, s):
        height = c.h * 0.55 * s + 4
        palette = [(220, 190, 40), (40, 110, 190), (200, 50, 40)]
        self._vehicle_body(c, 'bus', x, y, height, height * c.rng.uniform(2.2, 3.0),
                           jitter(c.rng, palette[c.rng.integers(len(palette))], 15),
                           window_rows=2)

    def _draw_train(self, c, x, y, s):
        height = c.h * 0.5 * s + 5
        self._vehicle_body(c, 'train', x, y, height, height * c.rng.uniform(4.0, 6.0),
                           jitter(c.rng, (150, 160, 170), 25), window_rows=1)

    def _person_shape(self, c: Canvas, cls: str, x: float, top: float, height: float,
                      legs: bool, inst: int) -> None:
        """Head, torso and (optionally) legs of a person-like figure, all one instance."""
        rng = c.rng
        m = c.mask()
        head = max(1, int(0.09 * height))
        cv2.circle(m, (int(x), int(top + head)), head, 1, -1)
        torso_h = 0.4 * height
        cv2.ellipse(m, (int(x), int(top + 2 * head + torso_h / 2)),
                    (max(1, int(0.14 * height)), max(1, int(torso_h / 2))), 0, 0, 360, 1, -1)
        if legs:
            leg_w = max(1, int(0.05 * height))
            y_hip = int(top + 2 * head + torso_h * 0.9)
            for dx in (-0.06, 0.06):
                lx = int(x + dx * height)
                m[y_hip:int(top + height), lx - leg_w:lx + leg_w] = 1
        clothes = [(40, 40, 60), (150, 40, 40), (60, 90, 150), (180, 170, 150), (50, 80, 50)]
        c.paint(m, cls, jitter(rng, clothes[rng.integers(len(clothes))], 20), texture=0.2,
                instance=inst)

    def _draw_person(self, c, x, y, s):
        height = c.h * 0.42 * s + 4
        self._person_shape(c, 'person', x, y - height, height, True, c.new_instance('person'))

    def _draw_rider(self, c, x, y, s):
        """A rider on a bicycle or motorcycle: two instances of two classes."""
        rng = c.rng
        height = c.h * 0.42 * s + 4
        vehicle = 'bicycle' if rng.random() < 0.6 else 'motorcycle'
        inst = c.new_instance(vehicle)
        m = c.mask()
        r = max(2, int(0.2 * height))
        thick = max(1, int(0.04 * height)) if vehicle == 'bicycle' else -1
        for dx in (-0.28, 0.28):
            cv2.circle(m, (int(x + dx * height), int(y - r)), r, 1, thick)
        cv2.line(m, (int(x - 0.28 * height), int(y - r)), (int(x + 0.28 * height), int(y - r)),
                 1, max(1, int(0.05 * height)))
        if vehicle == 'motorcycle':
            cv2.rectangle(m, (int(x - 0.2 * height), int(y - 2.2 * r)),
                          (int(x + 0.2 * height), int(y - r)), 1, -1)
        colour = (40, 40, 45) if vehicle == 'bicycle' else jitter(rng, (90, 30, 30), 40)
        c.paint(m, vehicle, colour, texture=0.1, instance=inst)
        self._person_shape(c, 'rider', x, y - r - 0.75 * height, 0.75 * height, False,
                           c.new_instance('rider'))

    # -- output -------------------------------------------------------------------------------
    def _finish(self, c: Canvas) -> Scene:
        rng = c.rng
        gain, bias = rng.uniform(0.7, 1.2), rng.uniform(-20, 20)
        img = c.image * gain + bias + self.noise_std * rng.standard_normal(c.image.shape)
        img = np.clip(img, 0, 255).astype(np.uint8)
        img = cv2.GaussianBlur(img, (3, 3), 0.6)
        label_ids = np.full(c.label.shape, VOID_LABEL_ID, np.uint8)
        instance_ids = np.zeros(c.label.shape, np.int32)
        for cls in CITYSCAPES_CLASSES:
            m = c.label == cls.train_id
            label_ids[m] = TRAIN_ID_TO_LABEL_ID[cls.train_id]
            if cls.has_instances:
                # Cityscapes numbers instances from 0 within each class: labelId * 1000 + k.
                instance_ids[m] = cls.label_id * 1000 + c.instance[m] - 1
            else:
                instance_ids[m] = cls.label_id
        return Scene(img, c.label.copy(), label_ids, instance_ids)
