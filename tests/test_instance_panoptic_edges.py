"""Edges of instance and panoptic segmentation that no test reached before (found by a mutation
review: each test here fails on a changed line of instances.py, panoptic.py or tasks/ that the
other tests let pass): range boundaries of labels, ids and centres, defaults, and the checks."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import instances as I, panoptic as P
from minisegnet.data import Shapes
from minisegnet.tasks.instance import InstanceTask, object_ids, scored_truth
from minisegnet.tasks.panoptic import PanopticTask

to_numpy = msn.backend.to_numpy
on = msn.backend.asarray


def _info(**changes):
    info = dict(num_classes=Shapes.num_classes, in_channels=Shapes.in_channels, class_names=list(Shapes.class_names),
                palette=[list(c) for c in Shapes.colors], ignore_index=None, thing_classes=list(Shapes.thing_classes),
                stuff_classes=list(Shapes.stuff_classes))
    info.update(changes)
    return info


# ---- instances.py
@pytest.mark.parametrize("call", [
    lambda m: I.renumber(m), lambda m: I.two_nearest_distances(m),
    lambda m: I.unet_weight_map(np.zeros((2, 2), np.int64), m), lambda m: I.instances_from_semantic(m, (1,))])
def test_boolean_maps_are_refused_where_ids_or_classes_are_meant(call):
    with pytest.raises(TypeError, match="must be an integer map"):
        call(on(np.ones((2, 2), bool)))


@pytest.mark.parametrize("call", [I.connected_components, I.renumber, I.two_nearest_distances])
def test_a_four_dimensional_map_is_refused_by_name(call):
    with pytest.raises(ValueError, match=r"must have shape \(H, W\) or \(N, H, W\)"):
        call(on(np.ones((2, 2, 3, 3), np.int64)))


def test_the_default_connectivity_is_8():
    labels = to_numpy(I.connected_components(on(np.eye(3, dtype=bool))))
    assert labels.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]                  # corners connect


def test_negative_values_are_nonzero_pixels_for_the_distance_transform():
    d = to_numpy(I.distance_transform_edt(on(np.array([[0, -1, -2, 3]]))))
    assert d.tolist() == [[0.0, 1.0, 2.0, 3.0]]


def test_a_target_of_minus_one_is_refused_when_ignore_index_is_another():
    with pytest.raises(ValueError, match="negative class -1"):
        I.unet_weight_map(on(np.array([[-1, 0, 1]])), on(np.zeros((1, 3), np.int64)))


def test_the_border_term_with_w0_below_one():
    # one pixel between two objects: d1 = d2 = 1; w_c: 3 pixels, 2 classes present
    w = to_numpy(I.unet_weight_map(on(np.array([[1, 0, 1]])), on(np.array([[1, 0, 2]])), w0=0.5, sigma=5.0))
    np.testing.assert_allclose(w[0], [0.75, 1.5 + 0.5 * np.exp(-4 / 50), 0.75], rtol=1e-6)


# ---- panoptic.py
def test_targets_refuse_an_integer_valid_map():
    with pytest.raises(ValueError, match="valid must be a boolean map"):
        P.panoptic_targets(on(np.ones((1, 2, 2), np.int64)), valid=on(np.ones((1, 2, 2), np.int64)))


def test_a_centre_one_row_or_column_past_the_image_is_refused():
    offset, thing = on(np.zeros((1, 2, 3, 4))), on(np.ones((1, 3, 4), bool))
    for centre in ([3, 0], [0, 4]):
        with pytest.raises(ValueError, match="outside the"):
            P.group_pixels(offset, thing, on(np.array([[centre]])), on(np.array([[True]])))


def test_merge_refuses_the_class_one_past_the_named_ones():
    sem = on(np.array([[[0, 1, 2]]]))                       # 2 is neither thing (1) nor stuff (0)
    with pytest.raises(ValueError, match=r"semantic holds classes \[2\]"):
        P.merge_semantic_and_instances(sem, on(np.zeros((1, 1, 3), np.int64)), (1,), (0,))


def test_merge_refuses_instances_of_a_transposed_shape():
    with pytest.raises(ValueError, match="must have the same shape"):
        P.merge_semantic_and_instances(on(np.zeros((1, 2, 3), np.int64)), on(np.zeros((1, 3, 2), np.int64)),
                                       (1,), (0,))


# ---- tasks/instance.py
def test_a_dataset_without_thing_classes_is_refused_by_name():
    info = _info()
    del info["thing_classes"]
    with pytest.raises(ValueError, match="needs thing classes"):
        InstanceTask(info)


def test_a_thing_class_equal_to_num_classes_is_refused():
    with pytest.raises(ValueError, match=r"classes \[4\] are named as thing or stuff"):
        InstanceTask(_info(thing_classes=[1, 2, 3, 4], stuff_classes=None))


def test_object_ids_when_class_0_is_a_thing_and_no_pixel_has_id_0():
    got = to_numpy(object_ids(on(np.zeros((1, 1, 2), np.int64)), on(np.array([[[1, 2]]])), (0,)))
    assert got.tolist() == [[[1, 2]]]


def test_object_ids_keep_two_classes_apart_when_every_pixel_has_one_id():
    got = to_numpy(object_ids(on(np.array([[[1, 2]]])), on(np.array([[[5, 5]]])), (1, 2)))
    assert got.tolist() == [[[1, 2]]]


def test_scored_truth_voids_the_label_equal_to_num_classes():
    truth = to_numpy(scored_truth(on(np.array([[[3, 0]]])), on(np.zeros((1, 1, 2), np.int64)), 3, (1,)))
    assert truth.tolist() == [[[[-1, 0], [0, 0]]]]


def test_targets_refuse_the_id_minus_one_and_a_transposed_instance_map():
    task = InstanceTask(_info())
    masks = np.zeros((1, 2, 3), np.int64)
    with pytest.raises(ValueError, match="negative id -1"):
        task.targets((masks, np.full((1, 2, 3), -1)))
    with pytest.raises(ValueError, match="instances has shape"):
        task.targets((masks, np.zeros((1, 3, 2), np.int64)))


def test_instance_write_prediction_refuses_ids_past_16_bits_and_counts_per_class(tmp_path):
    task = InstanceTask(_info())
    image = np.zeros((3, 2, 3), np.float32)
    classes = np.array([[1, 1, 2], [0, 0, 0]])
    ids = np.array([[1, 1, 2], [0, 0, 0]])
    _, note = task.write_prediction(image, dict(classes=classes, instances=ids), str(tmp_path), "a")
    assert note == "1 circle object, 1 square object, 0 triangle objects"
    with pytest.raises(ValueError, match="16-bit PNG"):
        task.write_prediction(image, dict(classes=classes, instances=ids * 70000), str(tmp_path), "b")


# ---- tasks/panoptic.py
def test_an_ignore_label_at_or_above_num_classes_counts_in_no_loss():
    task = PanopticTask(_info(ignore_index=255))
    masks = np.array([[[0, 255, 1]]])
    targets = task.targets((masks, np.array([[[0, 0, 1]]])))
    assert to_numpy(targets["center_weight"]).tolist() == [[[[1.0, 0.0, 1.0]]]]


def test_panoptic_write_prediction_checks_the_16_bit_encoding_and_counts_per_class(tmp_path):
    task = PanopticTask(_info())
    image = np.zeros((3, 1, 3), np.float32)
    pan = np.array([[[1, 1], [2, 1], [0, 0]]])
    _, note = task.write_prediction(image, dict(panoptic=pan, classes=pan[..., 0]), str(tmp_path), "a")
    assert note == "1 circle object, 1 square object, 0 triangle objects"
    for bad in ([[[1, 1000], [0, 0], [0, 0]]], [[[65, 0], [0, 0], [0, 0]]]):
        with pytest.raises(ValueError, match="must fit a 16-bit PNG"):
            task.write_prediction(image, dict(panoptic=np.array(bad), classes=pan[..., 0]), str(tmp_path), "b")


@pytest.mark.parametrize("task", [InstanceTask, PanopticTask])
def test_targets_refuse_a_uint64_id_past_int64(task):
    """The id 2**63 + 5 became -9223372036854775803 in int64: object_ids then saw no object
    (id <= 0), so the circle had no centre, no offsets and (panoptic) no valid pixel, with no
    word; panoptic.panoptic_targets refuses the same map ("above 2**63 - 1")."""
    masks = np.zeros((1, 8, 8), np.int64)
    masks[0, 2:6, 2:6] = 1
    ids = np.zeros((1, 8, 8), np.uint64)
    ids[0, 2:6, 2:6] = 2**63 + 5
    with pytest.raises(ValueError, match="above 2"):
        task(_info()).targets((masks, ids))
